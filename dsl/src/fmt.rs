//! The canonical layout of a policy file (`warden fmt`).
//!
//! Formatting prints the AST, so it is idempotent by construction, and puts
//! every comment back: a comment on its own line stays on its own line before
//! the part that followed it; a comment after code stays at the end of that
//! line. Blank lines between top-level items are normalised to one; a blank
//! line between a comment and what follows it at the top level is kept.

use std::fmt::Write as _;
use std::ops::Range;

use crate::ast::{
    Effect, Expectation, ExprKind, FieldDecl, Item, Literal, Mode, ParamDecl, PolicyFile, Presence, Rule,
    ShadowExpectation, TestCase,
};
use crate::err::Diagnostic;
use crate::parser::literal::{format_number, quote};
use crate::parser::parse_file;
use crate::parser::scan::{Comment, scan};
use crate::source::{Node, SourceFile};

const INDENT: &str = "  ";

/// Formats a file's text, keeping its comments.
pub fn format_source(file: &SourceFile) -> Result<String, Vec<Diagnostic>> {
    let ast = parse_file(file, 0)?;
    let comments = scan(&file.text).comments;
    let mut p = Printer { text: &file.text, comments: &comments, next: 0, out: String::new(), last_end: 0 };
    p.file(&ast);
    Ok(p.out)
}

/// Formats an AST without comments (for generated ASTs and tests).
pub fn format_ast(ast: &PolicyFile) -> String {
    let mut p = Printer { text: "", comments: &[], next: 0, out: String::new(), last_end: 0 };
    p.file(ast);
    p.out
}

struct Printer<'a> {
    text: &'a str,
    comments: &'a [Comment],
    /// Index of the first comment not yet printed.
    next: usize,
    out: String,
    /// End offset, in the source, of the last item or comment printed.
    last_end: usize,
}

impl Printer<'_> {
    fn comment_text(&self, c: &Comment) -> &str {
        self.text.get(c.span.clone()).unwrap_or_default()
    }

    /// Whether the source between `from` and `to` holds a blank line.
    fn blank_between(&self, from: usize, to: usize) -> bool {
        self.text.get(from..to).is_some_and(|s| s.matches('\n').count() >= 2)
    }

    fn ensure_blank_line(&mut self) {
        if !self.out.is_empty() && !self.out.ends_with("\n\n") {
            self.out.push('\n');
        }
    }

    /// Prints, on their own lines, the comments that start before `before`.
    fn comments_before(&mut self, before: usize, depth: usize, top_level: bool) {
        while let Some(c) = self.comments.get(self.next) {
            if c.span.start >= before {
                break;
            }
            if top_level && self.blank_between(self.last_end, c.span.start) {
                self.ensure_blank_line();
            }
            let line = self.comment_text(c).to_owned();
            self.line(depth, &line);
            self.last_end = c.span.end;
            self.next += 1;
        }
        if top_level && self.last_end > 0 && self.blank_between(self.last_end, before) {
            self.ensure_blank_line();
        }
    }

    /// Appends the comment that trails the source line ending at `end`, if
    /// there is one, to the output line being written.
    fn trailing_comment(&mut self, end: usize) {
        if let Some(c) = self.comments.get(self.next) {
            let gap = self.text.get(end..c.span.start).unwrap_or("\n");
            if c.trailing && c.span.start >= end && gap.trim().is_empty() {
                let text = self.comment_text(c).to_owned();
                let _ = write!(self.out, "  {text}");
                self.last_end = c.span.end;
                self.next += 1;
            }
        }
    }

    fn line(&mut self, depth: usize, text: &str) {
        for _ in 0..depth {
            self.out.push_str(INDENT);
        }
        self.out.push_str(text);
        self.out.push('\n');
    }

    /// Prints one line of output that came from `span` in the source.
    fn unit(&mut self, depth: usize, span: Option<Range<usize>>, text: &str) {
        if let Some(span) = &span {
            self.comments_before(span.start, depth, false);
        }
        for _ in 0..depth {
            self.out.push_str(INDENT);
        }
        self.out.push_str(text);
        if let Some(span) = span {
            // Comments inside a construct that spans lines (a long condition,
            // a multi-line test input) move above it rather than vanish.
            self.hoist_inner(span.end, depth);
            self.trailing_comment(span.end);
            self.last_end = self.last_end.max(span.end);
        }
        self.out.push('\n');
    }

    fn hoist_inner(&mut self, end: usize, depth: usize) {
        let mut hoisted = Vec::new();
        while let Some(c) = self.comments.get(self.next) {
            if c.span.start >= end {
                break;
            }
            hoisted.push(self.comment_text(c).to_owned());
            self.next += 1;
        }
        if hoisted.is_empty() {
            return;
        }
        let line_start = self.out.rfind('\n').map_or(0, |i| i + 1);
        let current = self.out.split_off(line_start);
        for h in hoisted {
            self.line(depth, &h);
        }
        self.out.push_str(&current);
    }

    fn open_block(&mut self, start: usize, header: &str) {
        self.unit(0, None, &format!("{header} {{"));
        self.last_end = self.last_end.max(start);
    }

    fn close_block(&mut self, end: usize) {
        let brace = end.saturating_sub(1);
        self.comments_before(brace, 1, false);
        self.out.push('}');
        self.trailing_comment(end);
        self.last_end = self.last_end.max(end);
        self.out.push('\n');
    }

    fn file(&mut self, ast: &PolicyFile) {
        for item in &ast.items {
            let start = item_start(item);
            self.ensure_blank_line();
            self.comments_before(start, 0, true);
            match item {
                Item::Input(block) => {
                    self.open_block(start, "input");
                    for field in &block.node.fields {
                        let text = field_decl(&field.node);
                        self.unit(1, Some(field.loc.span.clone()), &text);
                    }
                    self.close_block(block.loc.span.end);
                }
                Item::Param(p) => self.unit(0, Some(p.loc.span.clone()), &param_decl(&p.node)),
                Item::Threshold(t) => self.unit(0, Some(t.loc.span.clone()), &format!("threshold {}", t.node)),
                Item::ForbiddenFields(list) => {
                    let names: Vec<String> = list.node.iter().map(|n| quote(&n.node)).collect();
                    self.unit(0, Some(list.loc.span.clone()), &format!("forbidden_fields [{}]", names.join(", ")));
                }
                Item::Rule(rule) => self.rule(rule),
                Item::Test(test) => self.test(test),
            }
        }
        let rest = self.text.len() + 1;
        if self.next < self.comments.len() {
            self.ensure_blank_line();
            self.comments_before(rest, 0, true);
        }
    }

    fn rule(&mut self, rule: &Node<Rule>) {
        let r = &rule.node;
        self.open_block(rule.loc.span.start, &format!("rule {}", r.name.node));
        self.unit(1, Some(r.description.loc.span.clone()), &format!("description {}", quote(&r.description.node)));
        if !r.enabled {
            self.unit(1, None, "enabled false");
        }
        if r.mode != Mode::Enforce {
            self.unit(1, None, &format!("mode {}", r.mode.keyword()));
        }
        self.unit(1, Some(r.condition.loc.span.clone()), &format!("when {}", expr(&r.condition.node)));
        let effect = match r.effect.node {
            Effect::Score(n) => format!("score {n:+}"),
            Effect::Deny => "deny".to_owned(),
            Effect::Allow => "allow".to_owned(),
        };
        self.unit(1, Some(r.effect.loc.span.clone()), &effect);
        self.unit(1, Some(r.reason.loc.span.clone()), &format!("reason {}", r.reason.node));
        self.close_block(rule.loc.span.end);
    }

    fn test(&mut self, test: &Node<TestCase>) {
        let t = &test.node;
        self.open_block(test.loc.span.start, &format!("test {}", quote(&t.name.node)));
        self.unit(1, Some(t.input.loc.span.clone()), &format!("input {}", json(&t.input.node)));
        if let Some(o) = &t.overrides {
            self.unit(1, Some(o.loc.span.clone()), &format!("overrides {}", json(&o.node)));
        }
        self.unit(1, Some(t.expect.loc.span.clone()), &format!("expect {}", expectation(&t.expect.node)));
        if let Some(e) = &t.expect_shadow {
            let what = match &e.node {
                ShadowExpectation::None => "none".to_owned(),
                ShadowExpectation::Outcome { allowed, score, reason } => {
                    expectation(&Expectation::Decision { allowed: *allowed, score: *score, reason: reason.clone() })
                }
            };
            self.unit(1, Some(e.loc.span.clone()), &format!("expect shadow {what}"));
        }
        self.close_block(test.loc.span.end);
    }
}

fn item_start(item: &Item) -> usize {
    match item {
        Item::Input(n) => n.loc.span.start,
        Item::Param(n) => n.loc.span.start,
        Item::Threshold(n) => n.loc.span.start,
        Item::ForbiddenFields(n) => n.loc.span.start,
        Item::Rule(n) => n.loc.span.start,
        Item::Test(n) => n.loc.span.start,
    }
}

fn field_decl(d: &FieldDecl) -> String {
    let mut s = format!("{}: {}", d.path.node, d.ty.node);
    match &d.presence {
        Presence::Required => {}
        Presence::Optional => s.push('?'),
        Presence::Default(lit) => {
            let _ = write!(s, " = {}", literal(&lit.node));
        }
    }
    s
}

fn param_decl(p: &ParamDecl) -> String {
    format!("param {}: {} = {}", p.name.node, p.ty.node, literal(&p.default.node))
}

fn expectation(e: &Expectation) -> String {
    match e {
        Expectation::Decision { allowed, score, reason } => {
            let mut s = String::from(if *allowed { "allowed" } else { "blocked" });
            if let Some(n) = score {
                let _ = write!(s, " score {n}");
            }
            if let Some(r) = reason {
                let _ = write!(s, " reason {r}");
            }
            s
        }
        Expectation::Rejected { code, path } => match path {
            Some(p) => format!("rejected {code} {}", quote(p)),
            None => format!("rejected {code}"),
        },
    }
}

/// A literal as written in the language.
pub fn literal(lit: &Literal) -> String {
    match lit {
        Literal::String(s) => quote(s),
        Literal::Number(n) => format_number(*n),
        Literal::Bool(b) => b.to_string(),
        Literal::List(items) => {
            let parts: Vec<String> = items.iter().map(|i| literal(&i.node)).collect();
            format!("[{}]", parts.join(", "))
        }
    }
}

/// A condition on one line, with the fewest parentheses that keep its shape.
pub fn expr(e: &ExprKind) -> String {
    match e {
        ExprKind::Literal(lit) => literal(lit),
        ExprKind::Field(path) => path.to_string(),
        ExprKind::Param(name) => format!("param.{name}"),
        // `not (model in [...])` reads better than `not model in [...]`; both
        // parse the same.
        ExprKind::Not(inner) => format!(
            "not {}",
            wrap(&inner.node, |k| !matches!(
                k,
                ExprKind::Field(_) | ExprKind::Param(_) | ExprKind::Exists(_) | ExprKind::Not(_) | ExprKind::Literal(_)
            ))
        ),
        ExprKind::And(items) => items
            .iter()
            .map(|i| wrap(&i.node, |k| matches!(k, ExprKind::And(_) | ExprKind::Or(_))))
            .collect::<Vec<_>>()
            .join(" and "),
        ExprKind::Or(items) => {
            items.iter().map(|i| wrap(&i.node, |k| matches!(k, ExprKind::Or(_)))).collect::<Vec<_>>().join(" or ")
        }
        ExprKind::Compare { op, lhs, rhs } => {
            format!("{} {} {}", expr(&lhs.node), op.symbol(), expr(&rhs.node))
        }
        ExprKind::In { lhs, list } => {
            let items: Vec<String> = list.iter().map(|i| literal(&i.node)).collect();
            format!("{} in [{}]", expr(&lhs.node), items.join(", "))
        }
        ExprKind::InParam { lhs, param } => format!("{} in param.{}", expr(&lhs.node), param.node),
        ExprKind::Text { op, lhs, pattern } => format!("{} {} {}", expr(&lhs.node), op.keyword(), quote(&pattern.node)),
        ExprKind::Exists(path) => format!("exists({})", path.node),
    }
}

fn wrap(e: &ExprKind, needs_parens: impl Fn(&ExprKind) -> bool) -> String {
    if needs_parens(e) { format!("({})", expr(e)) } else { expr(e) }
}

/// JSON on one line, with a space after `:` and `,`.
pub fn json(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quote(s),
        Value::Array(items) => format!("[{}]", items.iter().map(json).collect::<Vec<_>>().join(", ")),
        Value::Object(map) => {
            let members: Vec<String> = map.iter().map(|(k, v)| format!("{}: {}", quote(k), json(v))).collect();
            format!("{{{}}}", members.join(", "))
        }
    }
}

/// The text of every comment in `text`, in order (for tools and tests that
/// check the formatter kept them).
pub fn comments(text: &str) -> Vec<String> {
    scan(text).comments.iter().filter_map(|c| text.get(c.span.clone())).map(str::to_owned).collect()
}
