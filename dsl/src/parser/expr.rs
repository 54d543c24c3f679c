//! Conditions. Precedence comes from pest's `PrattParser`: `not` binds
//! tightest, then `and`, then `or`. An unparenthesised chain such as
//! `a and b and c` becomes one n-ary `And`, so long chains don't make deep
//! trees; a parenthesised `(a and b)` stays a nested node, which keeps
//! `parse(fmt(ast)) == ast` exact.

use std::sync::LazyLock;

use pest::iterators::Pair;
use pest::pratt_parser::{Assoc, Op, PrattParser};

use super::Rule as R;
use super::build::{Builder, Built, parts};
use crate::ast::{CompareOp, Expr, ExprKind, TextOp};
use crate::err::DiagnosticKind;
use crate::source::{Loc, Node};

/// At most this many `not` in a row. Each one is a level of recursion in the
/// Pratt parser; real policies need one or two.
pub const MAX_NOT_RUN: usize = 8;

static PRATT: LazyLock<PrattParser<R>> = LazyLock::new(|| {
    PrattParser::new()
        .op(Op::infix(R::op_or, Assoc::Left))
        .op(Op::infix(R::op_and, Assoc::Left))
        .op(Op::prefix(R::op_not))
});

/// An expression under construction, and whether it is a bare chain of
/// `and`/`or` that the next operator of the same kind may extend.
struct Partial {
    expr: Expr,
    chain: bool,
}

fn cover(a: &Loc, b: &Loc) -> Loc {
    Loc::new(a.file, a.span.start.min(b.span.start)..a.span.end.max(b.span.end))
}

impl Builder<'_> {
    pub(crate) fn expr(&self, pair: Pair<'_, R>) -> Built<Expr> {
        self.check_not_runs(&pair)?;
        let parsed = PRATT
            .map_primary(|p| self.primary(p).map(|expr| Partial { expr, chain: false }))
            .map_prefix(|op, rhs| {
                let rhs = rhs?;
                let loc = cover(&self.loc(&op), &rhs.expr.loc);
                Ok(Partial { expr: Node::new(ExprKind::Not(Box::new(rhs.expr)), loc), chain: false })
            })
            .map_infix(|lhs, op, rhs| {
                let (lhs, rhs) = (lhs?, rhs?);
                let is_and = op.as_rule() == R::op_and;
                let loc = cover(&lhs.expr.loc, &rhs.expr.loc);
                let kind = match (lhs.chain, lhs.expr.node, is_and) {
                    (true, ExprKind::And(mut items), true) | (true, ExprKind::Or(mut items), false) => {
                        items.push(rhs.expr);
                        if is_and { ExprKind::And(items) } else { ExprKind::Or(items) }
                    }
                    (_, other, _) => {
                        let items = vec![Node::new(other, lhs.expr.loc), rhs.expr];
                        if is_and { ExprKind::And(items) } else { ExprKind::Or(items) }
                    }
                };
                Ok(Partial { expr: Node::new(kind, loc), chain: true })
            })
            .parse(pair.into_inner())?;
        Ok(parsed.expr)
    }

    fn check_not_runs(&self, pair: &Pair<'_, R>) -> Built<()> {
        let mut run = 0;
        for p in pair.clone().into_inner() {
            if p.as_rule() == R::op_not {
                run += 1;
                if run > MAX_NOT_RUN {
                    return Err(self
                        .diag(
                            DiagnosticKind::NestingTooDeep { limit: MAX_NOT_RUN, what: "`not` in a row" },
                            &self.loc(&p),
                        )
                        .with_label("too many `not` in a row")
                        .with_help("two `not` cancel out; remove them in pairs"));
                }
            } else {
                run = 0;
            }
        }
        Ok(())
    }

    fn primary(&self, pair: Pair<'_, R>) -> Built<Expr> {
        let loc = self.loc(&pair);
        match pair.as_rule() {
            R::group => self.expr(self.next(&mut pair.into_inner(), "condition", &loc)?),
            R::exists_call => {
                let path = self.path(self.next(&mut parts(pair), "field", &loc)?);
                Ok(Node::new(ExprKind::Exists(path), loc))
            }
            R::predicate => self.predicate(pair),
            _ => Err(self.internal("condition", &loc)),
        }
    }

    fn operand(&self, pair: Pair<'_, R>) -> Built<Expr> {
        let loc = self.loc(&pair);
        if pair.as_rule() == R::path {
            let path = self.path(pair);
            return Ok(Node::new(ExprKind::Field(path.node), loc));
        }
        if pair.as_rule() == R::param_ref {
            return Ok(Node::new(ExprKind::Param(self.param_ref(pair)?.node), loc));
        }
        let lit = self.scalar(pair)?;
        Ok(Node::new(ExprKind::Literal(lit.node), loc))
    }

    fn predicate(&self, pair: Pair<'_, R>) -> Built<Expr> {
        let loc = self.loc(&pair);
        let mut it = pair.into_inner();
        let lhs = self.operand(self.next(&mut it, "operand", &loc)?)?;
        let Some(tail) = it.next() else {
            return Ok(lhs);
        };
        let tail_loc = self.loc(&tail);
        let rule = tail.as_rule();
        let mut inner = tail.into_inner();
        let op = self.next(&mut inner, "operator", &tail_loc)?;
        let kind = match rule {
            R::compare_tail => {
                let op = match op.as_str() {
                    "==" => CompareOp::Eq,
                    "!=" => CompareOp::Ne,
                    "<" => CompareOp::Lt,
                    "<=" => CompareOp::Le,
                    ">" => CompareOp::Gt,
                    ">=" => CompareOp::Ge,
                    _ => return Err(self.internal("comparison operator", &tail_loc)),
                };
                let rhs = self.operand(self.next(&mut inner, "right operand", &tail_loc)?)?;
                ExprKind::Compare { op, lhs: Box::new(lhs), rhs: Box::new(rhs) }
            }
            R::in_tail => {
                let list = self.next(&mut inner, "list", &tail_loc)?;
                if list.as_rule() == R::param_ref {
                    ExprKind::InParam { lhs: Box::new(lhs), param: self.param_ref(list)? }
                } else {
                    ExprKind::In { lhs: Box::new(lhs), list: self.list(list)? }
                }
            }
            R::text_tail => {
                let text_op = match op.as_rule() {
                    R::op_starts => TextOp::StartsWith,
                    R::op_ends => TextOp::EndsWith,
                    R::op_contains => TextOp::Contains,
                    R::op_matches => TextOp::Matches,
                    _ => return Err(self.internal("text operator", &tail_loc)),
                };
                let pattern = self.string(self.next(&mut inner, "pattern", &tail_loc)?)?;
                ExprKind::Text { op: text_op, lhs: Box::new(lhs), pattern }
            }
            _ => return Err(self.internal("predicate", &tail_loc)),
        };
        Ok(Node::new(kind, loc))
    }
}
