//! Concrete tree → AST, one function per grammar rule.
//!
//! Shapes the grammar guarantees are still checked: a surprise becomes an
//! `internal` diagnostic rather than a panic (the fuzz targets look for them).

use pest::iterators::Pair;

use super::Rule as R;
use super::literal;
use crate::ast::{
    Effect, Expectation, FieldDecl, FieldPath, InputBlock, Item, Literal, Mode, ParamDecl, PolicyFile, Presence, Rule,
    ShadowExpectation, TestCase, Type,
};
use crate::err::{Diagnostic, DiagnosticKind};
use crate::source::{FileId, Loc, Node, SourceFile};

/// Scores and thresholds must lie within ± this bound, so that sums of
/// thousands of rules stay far from overflow.
pub const MAX_MAGNITUDE: i64 = 1_000_000_000;

mod json;

pub(crate) type Built<T> = Result<T, Diagnostic>;

pub(crate) struct Builder<'a> {
    pub(crate) file: &'a SourceFile,
    pub(crate) id: FileId,
    pub(crate) errors: Vec<Diagnostic>,
}

/// Keywords that only introduce a part; the builder reads what follows them.
fn is_marker(rule: R) -> bool {
    matches!(
        rule,
        R::k_input
            | R::k_param
            | R::k_threshold
            | R::k_forbidden
            | R::k_rule
            | R::k_test
            | R::k_desc
            | R::k_enabled
            | R::k_mode
            | R::k_when
            | R::k_score
            | R::k_reason
            | R::k_overrides
            | R::k_expect
            | R::k_rejected
            | R::k_exists
    )
}

/// The meaningful children of `pair`.
pub(crate) fn parts(pair: Pair<'_, R>) -> impl Iterator<Item = Pair<'_, R>> {
    pair.into_inner().filter(|p| !is_marker(p.as_rule()))
}

impl<'a> Builder<'a> {
    pub(crate) fn new(file: &'a SourceFile, id: FileId) -> Self {
        Self { file, id, errors: Vec::new() }
    }

    /// The location of a pair, without the whitespace and comments pest
    /// consumes after it when it looks for an optional part that isn't there.
    pub(crate) fn loc(&self, pair: &Pair<'_, R>) -> Loc {
        let span = pair.as_span();
        let end = trim_end(&self.file.text, span.start(), span.end());
        Loc::new(self.id, span.start()..end)
    }

    pub(crate) fn diag(&self, kind: DiagnosticKind, loc: &Loc) -> Diagnostic {
        Diagnostic::new(kind).at(self.file, loc)
    }

    /// An `internal` diagnostic: the concrete tree had a shape the grammar
    /// should not produce.
    pub(crate) fn internal(&self, what: &str, loc: &Loc) -> Diagnostic {
        self.diag(DiagnosticKind::Internal { message: format!("unexpected parse tree: {what}") }, loc)
    }

    /// The next child, or an internal error naming what was expected.
    pub(crate) fn next<'i>(
        &self,
        it: &mut impl Iterator<Item = Pair<'i, R>>,
        what: &str,
        parent: &Loc,
    ) -> Built<Pair<'i, R>> {
        it.next().ok_or_else(|| self.internal(&format!("missing {what}"), parent))
    }

    pub(crate) fn file(&mut self, pair: Pair<'_, R>) -> PolicyFile {
        let mut items = Vec::new();
        for item in pair.into_inner() {
            let built = match item.as_rule() {
                R::EOI => continue,
                R::input_block => self.input_block(item).map(Item::Input),
                R::param_decl => self.param_decl(item).map(Item::Param),
                R::threshold_decl => self.threshold(item).map(Item::Threshold),
                R::forbidden_decl => self.forbidden(item).map(Item::ForbiddenFields),
                R::rule_decl => self.rule(item).map(Item::Rule),
                R::test_decl => self.test(item).map(Item::Test),
                _ => Err(self.internal("top-level item", &self.loc(&item))),
            };
            match built {
                Ok(i) => items.push(i),
                Err(d) => self.errors.push(d),
            }
        }
        PolicyFile { items }
    }

    fn input_block(&mut self, pair: Pair<'_, R>) -> Built<Node<InputBlock>> {
        let loc = self.loc(&pair);
        let mut fields = Vec::new();
        for decl in parts(pair) {
            match self.field_decl(decl) {
                Ok(f) => fields.push(f),
                Err(d) => self.errors.push(d),
            }
        }
        Ok(Node::new(InputBlock { fields }, loc))
    }

    fn field_decl(&self, pair: Pair<'_, R>) -> Built<Node<FieldDecl>> {
        let loc = self.loc(&pair);
        let mut it = parts(pair);
        let path = self.path(self.next(&mut it, "field path", &loc)?);
        let ty = self.type_name(self.next(&mut it, "type", &loc)?)?;
        let mut presence = Presence::Required;
        for extra in it {
            let extra_loc = self.loc(&extra);
            let next = match extra.as_rule() {
                R::optional_mark => Presence::Optional,
                R::default_value => {
                    let mut inner = extra.into_inner();
                    let value = self.next(&mut inner, "default value", &extra_loc)?;
                    Presence::Default(self.literal_or_list(value)?)
                }
                _ => return Err(self.internal("field modifier", &extra_loc)),
            };
            if presence != Presence::Required {
                return Err(self
                    .diag(
                        DiagnosticKind::Syntax { expected: "either `?` or a default value, not both".into() },
                        &extra_loc,
                    )
                    .with_help("a field with a default is already optional; remove the `?`"));
            }
            presence = next;
        }
        Ok(Node::new(FieldDecl { path, ty, presence }, loc))
    }

    fn param_decl(&self, pair: Pair<'_, R>) -> Built<Node<ParamDecl>> {
        let loc = self.loc(&pair);
        let mut it = parts(pair);
        let name = self.ident(self.next(&mut it, "parameter name", &loc)?);
        let ty = self.type_name(self.next(&mut it, "type", &loc)?)?;
        let value = self.literal_or_list(self.next(&mut it, "default value", &loc)?)?;
        Ok(Node::new(ParamDecl { name, ty, default: value }, loc))
    }

    /// `string`, `bool`, `number` or `list<string>`.
    fn type_name(&self, pair: Pair<'_, R>) -> Built<Node<Type>> {
        let loc = self.loc(&pair);
        let ty = match pair.into_inner().next().map(|p| p.as_rule()) {
            Some(R::t_string) => Type::String,
            Some(R::t_bool) => Type::Bool,
            Some(R::t_number) => Type::Number,
            Some(R::t_list) => Type::StringList,
            _ => return Err(self.internal("type name", &loc)),
        };
        Ok(Node::new(ty, loc))
    }

    /// `param.NAME`: the parameter's name, located at the whole reference.
    pub(crate) fn param_ref(&self, pair: Pair<'_, R>) -> Built<Node<String>> {
        let loc = self.loc(&pair);
        let name = self.next(&mut parts(pair), "parameter name", &loc)?;
        Ok(Node::new(name.as_str().to_owned(), loc))
    }

    fn threshold(&self, pair: Pair<'_, R>) -> Built<Node<i64>> {
        let loc = self.loc(&pair);
        let value = self.integer(self.next(&mut parts(pair), "threshold value", &loc)?)?;
        Ok(Node::new(value, loc))
    }

    fn forbidden(&self, pair: Pair<'_, R>) -> Built<Node<Vec<Node<String>>>> {
        let loc = self.loc(&pair);
        let list = self.next(&mut parts(pair), "field list", &loc)?;
        let mut names = Vec::new();
        for item in list.into_inner() {
            let item_loc = self.loc(&item);
            match self.scalar(item)?.node {
                Literal::String(s) => names.push(Node::new(s, item_loc)),
                other => {
                    return Err(self
                        .diag(
                            DiagnosticKind::TypeMismatch {
                                message: format!(
                                    "forbidden field names are strings, found {}",
                                    literal_kind_name(&other)
                                ),
                            },
                            &item_loc,
                        )
                        .with_help("quote the field name, e.g. \"prompt\""));
                }
            }
        }
        Ok(Node::new(names, loc))
    }

    fn rule(&self, pair: Pair<'_, R>) -> Built<Node<Rule>> {
        let loc = self.loc(&pair);
        let mut it = parts(pair);
        let name = self.ident(self.next(&mut it, "rule name", &loc)?);
        let owner = format!("rule `{}`", name.node);
        let mut description = None;
        let mut enabled = None;
        let mut mode = None;
        let mut condition = None;
        let mut effect = None;
        let mut reason = None;
        for part in it {
            let part_loc = self.loc(&part);
            let rule = part.as_rule();
            let mut inner = parts(part);
            match rule {
                R::description => {
                    let s = self.string(self.next(&mut inner, "description", &part_loc)?)?;
                    self.set_once(&mut description, s, &owner, "description", &part_loc)?;
                }
                R::enabled => {
                    let b = self.boolean(self.next(&mut inner, "enabled flag", &part_loc)?)?;
                    self.set_once(&mut enabled, b, &owner, "enabled", &part_loc)?;
                }
                R::mode => {
                    let m = match self.next(&mut inner, "mode", &part_loc)?.as_rule() {
                        R::k_shadow => Mode::Shadow,
                        _ => Mode::Enforce,
                    };
                    self.set_once(&mut mode, m, &owner, "mode", &part_loc)?;
                }
                R::when_clause => {
                    let e = self.expr(self.next(&mut inner, "condition", &part_loc)?)?;
                    self.set_once(&mut condition, e, &owner, "when", &part_loc)?;
                }
                R::effect => {
                    let e = self.effect(inner, &part_loc)?;
                    self.set_once(&mut effect, Node::new(e, part_loc.clone()), &owner, "score/deny/allow", &part_loc)?;
                }
                R::reason => {
                    let r = self.ident(self.next(&mut inner, "reason code", &part_loc)?);
                    self.set_once(&mut reason, r, &owner, "reason", &part_loc)?;
                }
                _ => return Err(self.internal("rule part", &part_loc)),
            }
        }
        let missing = |part: &'static str, help: &str| {
            self.diag(DiagnosticKind::MissingPart { owner: owner.clone(), part }, &name.loc)
                .with_label("in this rule")
                .with_help(help.to_owned())
        };
        let rule = Rule {
            description: description
                .ok_or_else(|| missing("description", "add `description \"what this rule is for\"`"))?,
            enabled: enabled.unwrap_or(true),
            mode: mode.unwrap_or_default(),
            condition: condition.ok_or_else(|| {
                missing("when", "add `when <condition>`, e.g. `when metadata.contains_personal_data`")
            })?,
            effect: effect
                .ok_or_else(|| missing("score/deny/allow", "add an effect: `score +50`, `deny` or `allow`"))?,
            reason: reason.ok_or_else(|| missing("reason", "add `reason <code>`, e.g. `reason external_model`"))?,
            name,
        };
        Ok(Node::new(rule, loc))
    }

    fn effect<'i>(&self, mut inner: impl Iterator<Item = Pair<'i, R>>, loc: &Loc) -> Built<Effect> {
        let first = self.next(&mut inner, "effect", loc)?;
        match first.as_rule() {
            R::k_deny => Ok(Effect::Deny),
            R::k_allow => Ok(Effect::Allow),
            R::integer => Ok(Effect::Score(self.integer(first)?)),
            _ => Err(self.internal("effect", loc)),
        }
    }

    fn set_once<T>(&self, slot: &mut Option<T>, value: T, owner: &str, part: &'static str, loc: &Loc) -> Built<()> {
        if slot.is_some() {
            return Err(self
                .diag(DiagnosticKind::DuplicatePart { owner: owner.to_owned(), part }, loc)
                .with_label("stated again here")
                .with_help(format!("keep one `{part}`")));
        }
        *slot = Some(value);
        Ok(())
    }

    fn test(&self, pair: Pair<'_, R>) -> Built<Node<TestCase>> {
        let loc = self.loc(&pair);
        let mut it = parts(pair);
        let name_pair = self.next(&mut it, "test name", &loc)?;
        let name_loc = self.loc(&name_pair);
        let name = Node::new(self.string(name_pair)?.node, name_loc);
        let owner = format!("test \"{}\"", name.node);
        let mut input = None;
        let mut overrides = None;
        let mut expect = None;
        let mut expect_shadow = None;
        for part in it {
            let part_loc = self.loc(&part);
            let rule = part.as_rule();
            let mut inner = parts(part);
            let first = self.next(&mut inner, "test part", &part_loc)?;
            match rule {
                R::test_input => {
                    let v = Node::new(self.json(first)?, part_loc.clone());
                    self.set_once(&mut input, v, &owner, "input", &part_loc)?;
                }
                R::test_overrides => {
                    let v = Node::new(self.json(first)?, part_loc.clone());
                    self.set_once(&mut overrides, v, &owner, "overrides", &part_loc)?;
                }
                R::test_expect => {
                    let e = Node::new(self.expectation(first)?, part_loc.clone());
                    self.set_once(&mut expect, e, &owner, "expect", &part_loc)?;
                }
                R::test_expect_shadow => {
                    // `first` is the `shadow` keyword; what it expects follows.
                    let what = self.next(&mut inner, "`none` or a decision", &part_loc)?;
                    let e = match what.as_rule() {
                        R::k_none => ShadowExpectation::None,
                        _ => match self.expectation(what)? {
                            Expectation::Decision { allowed, score, reason } => {
                                ShadowExpectation::Outcome { allowed, score, reason }
                            }
                            Expectation::Rejected { .. } => return Err(self.internal("expect shadow", &part_loc)),
                        },
                    };
                    self.set_once(
                        &mut expect_shadow,
                        Node::new(e, part_loc.clone()),
                        &owner,
                        "expect shadow",
                        &part_loc,
                    )?;
                }
                _ => return Err(self.internal("test part", &part_loc)),
            }
        }
        let missing = |part: &'static str, help: &str| {
            self.diag(DiagnosticKind::MissingPart { owner: owner.clone(), part }, &name.loc)
                .with_label("in this test")
                .with_help(help.to_owned())
        };
        let test = TestCase {
            input: input.ok_or_else(|| {
                missing("input", "add `input { \"model\": \"...\", \"operation\": \"...\", \"metadata\": {} }`")
            })?,
            expect: expect
                .ok_or_else(|| missing("expect", "add `expect allowed` or `expect blocked score 70 reason <code>`"))?,
            overrides,
            expect_shadow,
            name,
        };
        Ok(Node::new(test, loc))
    }

    fn expectation(&self, pair: Pair<'_, R>) -> Built<Expectation> {
        let loc = self.loc(&pair);
        let rule = pair.as_rule();
        let mut it = parts(pair);
        match rule {
            R::expect_decision => {
                let outcome = self.next(&mut it, "allowed or blocked", &loc)?;
                let allowed = outcome.as_rule() == R::k_allowed;
                let mut score = None;
                let mut reason = None;
                for p in it {
                    match p.as_rule() {
                        R::integer => score = Some(self.integer(p)?),
                        R::ident => reason = Some(p.as_str().to_owned()),
                        _ => return Err(self.internal("expectation part", &loc)),
                    }
                }
                Ok(Expectation::Decision { allowed, score, reason })
            }
            R::expect_rejected => {
                let code = self.next(&mut it, "rejection code", &loc)?.as_str().to_owned();
                let path = match it.next() {
                    Some(p) => Some(self.string(p)?.node),
                    None => None,
                };
                Ok(Expectation::Rejected { code, path })
            }
            _ => Err(self.internal("expectation", &loc)),
        }
    }

    // ---- names and literals ------------------------------------------------

    pub(crate) fn ident(&self, pair: Pair<'_, R>) -> Node<String> {
        Node::new(pair.as_str().to_owned(), self.loc(&pair))
    }

    pub(crate) fn path(&self, pair: Pair<'_, R>) -> Node<FieldPath> {
        Node::new(FieldPath::from_dotted(pair.as_str()), self.loc(&pair))
    }

    pub(crate) fn string(&self, pair: Pair<'_, R>) -> Built<Node<String>> {
        let loc = self.loc(&pair);
        match literal::unescape(pair.as_str()) {
            Ok(s) => Ok(Node::new(s, loc)),
            Err(bad) => {
                let at = loc.span.start + bad.offset.saturating_sub(1);
                let esc_loc = Loc::new(self.id, at..at + bad.escape.len());
                Err(self
                    .diag(DiagnosticKind::InvalidEscape { escape: bad.escape }, &esc_loc)
                    .with_label("not a known escape")
                    .with_help(
                        "known escapes are \\\" \\\\ \\/ \\b \\f \\n \\r \\t and \\uXXXX; write \\\\ for a backslash",
                    ))
            }
        }
    }

    pub(crate) fn boolean(&self, pair: Pair<'_, R>) -> Built<bool> {
        match pair.as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(self.internal("boolean", &self.loc(&pair))),
        }
    }

    fn integer(&self, pair: Pair<'_, R>) -> Built<i64> {
        let text = pair.as_str();
        match text.parse::<i64>() {
            Ok(n) if n.abs() <= MAX_MAGNITUDE => Ok(n),
            _ => Err(self.diag(
                DiagnosticKind::NumberOutOfRange {
                    text: text.to_owned(),
                    expected: format!("an integer between -{MAX_MAGNITUDE} and {MAX_MAGNITUDE}"),
                },
                &self.loc(&pair),
            )),
        }
    }

    /// A scalar literal: string, number or boolean.
    pub(crate) fn scalar(&self, pair: Pair<'_, R>) -> Built<Node<Literal>> {
        let loc = self.loc(&pair);
        let lit = match pair.as_rule() {
            R::string => Literal::String(self.string(pair)?.node),
            R::boolean => Literal::Bool(self.boolean(pair)?),
            R::number => {
                let text = pair.as_str();
                match text.parse::<f64>() {
                    Ok(n) if n.is_finite() => Literal::Number(n),
                    _ => {
                        return Err(self.diag(
                            DiagnosticKind::NumberOutOfRange {
                                text: text.to_owned(),
                                expected: "a finite number".into(),
                            },
                            &loc,
                        ));
                    }
                }
            }
            _ => return Err(self.internal("literal", &loc)),
        };
        Ok(Node::new(lit, loc))
    }

    pub(crate) fn list(&self, pair: Pair<'_, R>) -> Built<Vec<Node<Literal>>> {
        pair.into_inner().map(|p| self.scalar(p)).collect()
    }

    pub(crate) fn literal_or_list(&self, pair: Pair<'_, R>) -> Built<Node<Literal>> {
        if pair.as_rule() == R::list {
            let loc = self.loc(&pair);
            Ok(Node::new(Literal::List(self.list(pair)?), loc))
        } else {
            self.scalar(pair)
        }
    }
}

pub(crate) fn literal_kind_name(lit: &Literal) -> &'static str {
    match lit {
        Literal::String(_) => "a string",
        Literal::Number(_) => "a number",
        Literal::Bool(_) => "a boolean",
        Literal::List(items) if items.iter().any(|i| !matches!(i.node, Literal::String(_))) => {
            "a list holding non-strings"
        }
        Literal::List(_) => "a list",
    }
}

/// Moves `end` back over trailing whitespace and `#` comments. Strings can't
/// span lines, so whether a `#` on the last line starts a comment is decided
/// by scanning that line alone.
pub(crate) fn trim_end(text: &str, start: usize, mut end: usize) -> usize {
    loop {
        let Some(slice) = text.get(start..end) else {
            return end;
        };
        let trimmed = start + slice.trim_end().len();
        let line_start = text.get(..trimmed).and_then(|t| t.rfind('\n')).map_or(0, |i| i + 1).max(start);
        let Some(line) = text.get(line_start..trimmed) else {
            return trimmed;
        };
        match comment_start(line) {
            Some(at) => end = line_start + at,
            None => return trimmed,
        }
    }
}

fn comment_start(line: &str) -> Option<usize> {
    let (mut in_string, mut escaped) = (false, false);
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            '#' if !in_string => return Some(i),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::trim_end;

    #[test]
    fn trims_trailing_space_and_comments_only() {
        let t = "model: string   # the id\n  # more\n";
        assert_eq!(trim_end(t, 0, t.len()), "model: string".len());
        let q = "x \"a # b\" # c";
        assert_eq!(trim_end(q, 0, q.len()), "x \"a # b\"".len());
        assert_eq!(trim_end("   ", 0, 3), 0);
    }
}
