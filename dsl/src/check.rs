//! Static checks over a whole policy set: declarations, names, types,
//! regexes, constant conditions, and the warnings a reviewer would raise.
//!
//! Every problem is collected; nothing stops at the first error.

mod condition;
mod params;
mod suggest;

use std::collections::{HashMap, HashSet};

use crate::ast::{Effect, Expectation, ExprKind, FieldPath, Item, Literal, Mode, PolicyFile, Presence, Type};
use crate::err::{Diagnostic, DiagnosticKind, has_errors};
use crate::parser::parse_file;
use crate::set::{
    Checked, DEFAULT_FORBIDDEN_FIELDS, DEFAULT_THRESHOLD, FieldSpec, ParamSpec, PolicySet, RuleDef, TestDef,
};
use crate::source::{Loc, SourceFile};

/// Parses and checks all files of a policy set.
///
/// Files are ordered by name, which fixes the source order of rules (and so
/// the tie-break between equal scores). When any file fails to parse, the
/// syntax errors of every file are reported and the semantic checks are
/// skipped, since they would only repeat the same mistake in other words.
pub fn check(mut sources: Vec<SourceFile>) -> Checked {
    sources.sort_by(|a, b| a.name.cmp(&b.name));
    let mut diagnostics = Vec::new();
    if sources.is_empty() {
        diagnostics.push(
            Diagnostic::new(DiagnosticKind::EmptySet)
                .with_help("policy files end in `.warden`; `warden check DIR` reads every one under DIR"),
        );
        return Checked { set: None, diagnostics };
    }
    let mut files = Vec::with_capacity(sources.len());
    for (id, src) in sources.iter().enumerate() {
        match parse_file(src, id) {
            Ok(ast) => files.push(ast),
            Err(errs) => diagnostics.extend(errs),
        }
    }
    if has_errors(&diagnostics) {
        return Checked { set: None, diagnostics };
    }
    let mut checker = Checker { sources: &sources, diagnostics };
    let set = checker.check_files(files);
    let Checker { diagnostics, .. } = checker;
    let set = (!has_errors(&diagnostics)).then_some(PolicySet { sources, ..set });
    Checked { set, diagnostics }
}

struct Checker<'a> {
    sources: &'a [SourceFile],
    diagnostics: Vec<Diagnostic>,
}

impl Checker<'_> {
    pub(super) fn at(&self, kind: DiagnosticKind, loc: &Loc) -> Diagnostic {
        match self.sources.get(loc.file) {
            Some(file) => Diagnostic::new(kind).at(file, loc),
            None => Diagnostic::new(kind),
        }
    }

    pub(super) fn push(&mut self, d: Diagnostic) {
        self.diagnostics.push(d);
    }

    fn check_files(&mut self, files: Vec<PolicyFile>) -> PolicySet {
        let mut threshold = None;
        let mut forbidden = None;
        let mut field_decls = Vec::new();
        let mut param_decls = Vec::new();
        let mut rules = Vec::new();
        let mut tests = Vec::new();
        for item in files.into_iter().flat_map(|f| f.items) {
            match item {
                Item::Input(block) => field_decls.extend(block.node.fields),
                Item::Param(p) => param_decls.push(p),
                Item::Threshold(t) => self.set_once(&mut threshold, t, "threshold"),
                Item::ForbiddenFields(list) => self.set_once(&mut forbidden, list, "forbidden_fields"),
                Item::Rule(r) => rules.push(r),
                Item::Test(t) => tests.push(t),
            }
        }
        let forbidden_fields: Vec<String> = match &forbidden {
            Some(list) => list.node.iter().map(|n| n.node.clone()).collect(),
            None => DEFAULT_FORBIDDEN_FIELDS.iter().map(|s| (*s).to_owned()).collect(),
        };
        let fields = self.check_fields(field_decls, &forbidden_fields);
        let field_map: HashMap<&FieldPath, &FieldSpec> = fields.iter().map(|f| (&f.path, f)).collect();
        let params = params::check_decls(self, param_decls);
        let param_map: HashMap<&str, &ParamSpec> = params.iter().map(|p| (p.name.as_str(), p)).collect();
        self.check_rule_names(&rules);
        let mut used_params = HashSet::new();
        for rule in &rules {
            condition::check_condition(self, &field_map, &param_map, &mut used_params, &rule.node.condition);
        }
        params::warn_unused(self, &params, &used_params);
        let tests = self.check_tests(tests, &rules);
        let (threshold_value, threshold_loc) = match threshold {
            Some(t) => (t.node, Some(t.loc)),
            None => (DEFAULT_THRESHOLD, None),
        };
        self.warn_unreachable_threshold(&rules, threshold_value, threshold_loc.as_ref());
        self.warn_shadowed(&rules);
        PolicySet {
            sources: Vec::new(),
            fields,
            params,
            threshold: threshold_value,
            threshold_loc,
            forbidden_fields,
            rules,
            tests,
        }
    }

    fn set_once<T>(
        &mut self,
        slot: &mut Option<crate::source::Node<T>>,
        value: crate::source::Node<T>,
        setting: &'static str,
    ) {
        if let Some(first) = slot {
            let first_at = self.sources.get(first.loc.file).map(|f| {
                let (line, col) = f.line_col(first.loc.span.start);
                format!("{}:{line}:{col}", f.name)
            });
            let d = self
                .at(DiagnosticKind::DuplicateSetting { setting }, &value.loc)
                .with_label("set again here")
                .with_help(format!("it is already set at {}; keep one", first_at.unwrap_or_default()));
            self.push(d);
        } else {
            *slot = Some(value);
        }
    }

    fn check_fields(
        &mut self,
        decls: Vec<crate::source::Node<crate::ast::FieldDecl>>,
        forbidden: &[String],
    ) -> Vec<FieldSpec> {
        let mut fields: Vec<FieldSpec> = Vec::with_capacity(decls.len());
        for decl in decls {
            let decl_loc = decl.loc.clone();
            let d = decl.node;
            let path = d.path.node.clone();
            if let Some(seg) = path.segments().iter().find(|s| forbidden.iter().any(|f| f.eq_ignore_ascii_case(s))) {
                let diag = self
                    .at(DiagnosticKind::ForbiddenFieldDeclared { path: path.to_string() }, &d.path.loc)
                    .with_label(format!("`{seg}` is refused in every request"))
                    .with_help("requests holding content fields are rejected before any rule runs; declare metadata about the content instead");
                self.push(diag);
                continue;
            }
            if fields.iter().any(|f| f.path == path) {
                let diag = self
                    .at(DiagnosticKind::DuplicateField { path: path.to_string() }, &d.path.loc)
                    .with_label("declared again here")
                    .with_help("each field is declared once across the whole set");
                self.push(diag);
                continue;
            }
            let conflict = fields.iter().find_map(|f| {
                if path.segments().starts_with(f.path.segments()) {
                    Some((f.path.to_string(), path.to_string()))
                } else if f.path.segments().starts_with(path.segments()) {
                    Some((path.to_string(), f.path.to_string()))
                } else {
                    None
                }
            });
            if let Some((parent, child)) = conflict {
                let diag = self
                    .at(DiagnosticKind::FieldConflict { path: parent.clone(), child }, &d.path.loc)
                    .with_help(format!("`{parent}` holds an object; declare only the fields inside it"));
                self.push(diag);
                continue;
            }
            if let Presence::Default(lit) = &d.presence {
                if lit.node.ty() != Some(d.ty.node) || has_non_string(&lit.node) {
                    let found = crate::parser::literal_kind_name(&lit.node);
                    let diag = self
                        .at(
                            DiagnosticKind::TypeMismatch {
                                message: format!(
                                    "the default of `{path}` is {found}, but the field is a `{}`",
                                    d.ty.node
                                ),
                            },
                            &lit.loc,
                        )
                        .with_label(format!("expected a `{}`", d.ty.node))
                        .with_help(default_example(d.ty.node));
                    self.push(diag);
                    continue;
                }
            }
            fields.push(FieldSpec { path, ty: d.ty.node, presence: d.presence, loc: decl_loc });
        }
        fields
    }

    fn check_rule_names(&mut self, rules: &[RuleDef]) {
        let mut seen: HashMap<&str, &Loc> = HashMap::new();
        for rule in rules {
            let name = rule.node.name.node.as_str();
            if let Some(first) = seen.get(name) {
                let first_at = self.sources.get(first.file).map(|f| {
                    let (line, col) = f.line_col(first.span.start);
                    format!("{}:{line}:{col}", f.name)
                });
                let d = self
                    .at(DiagnosticKind::DuplicateRule { name: name.to_owned() }, &rule.node.name.loc)
                    .with_label("defined again here")
                    .with_help(format!(
                        "first defined at {}; rule names are unique across all files",
                        first_at.unwrap_or_default()
                    ));
                self.push(d);
            } else {
                seen.insert(name, &rule.node.name.loc);
            }
        }
    }

    fn check_tests(
        &mut self,
        tests: Vec<crate::source::Node<crate::ast::TestCase>>,
        rules: &[RuleDef],
    ) -> Vec<TestDef> {
        let reasons: HashSet<&str> = rules.iter().map(|r| r.node.reason.node.as_str()).collect();
        let mut out = Vec::with_capacity(tests.len());
        for t in tests {
            let loc = t.loc;
            let t = t.node;
            let shadow_reason = match t.expect_shadow.as_ref().map(|e| (&e.node, &e.loc)) {
                Some((crate::ast::ShadowExpectation::Outcome { reason: Some(r), .. }, loc)) => Some((r, loc)),
                _ => None,
            };
            let decision_reason = match &t.expect.node {
                Expectation::Decision { reason: Some(r), .. } => Some((r, &t.expect.loc)),
                _ => None,
            };
            for (reason, at) in decision_reason.into_iter().chain(shadow_reason) {
                if reason != "ok" && !reasons.contains(reason.as_str()) {
                    let candidates = reasons.iter().copied().chain(std::iter::once("ok"));
                    let mut d = self
                        .at(DiagnosticKind::InvalidTest { message: format!("no rule gives reason `{reason}`") }, at)
                        .with_label("this reason can never be the outcome");
                    if let Some(s) = suggest::closest(reason, candidates) {
                        d = d.with_help(format!("did you mean `{s}`?"));
                    }
                    self.push(d);
                }
            }
            out.push(TestDef {
                name: t.name.node,
                input: t.input.node,
                overrides: t.overrides,
                expect: t.expect.node,
                expect_shadow: t.expect_shadow.map(|e| e.node),
                loc,
            });
        }
        out
    }

    fn warn_unreachable_threshold(&mut self, rules: &[RuleDef], threshold: i64, loc: Option<&Loc>) {
        // A set without score rules (say, one that only denies) has no use
        // for a threshold; that is not worth a warning.
        if !rules.iter().any(|r| matches!(r.node.effect.node, Effect::Score(_))) {
            return;
        }
        let max: i64 = rules
            .iter()
            .filter(|r| r.node.enabled && r.node.mode == Mode::Enforce)
            .filter_map(|r| match r.node.effect.node {
                Effect::Score(s) if s > 0 => Some(s),
                _ => None,
            })
            .fold(0i64, i64::saturating_add);
        if max >= threshold {
            return;
        }
        let kind = DiagnosticKind::UnreachableThreshold { threshold, max };
        let d = match loc {
            Some(loc) => self.at(kind, loc).with_label("never reached"),
            None => Diagnostic::new(kind),
        };
        let d = d.with_help("lower the threshold or raise the scores; only `deny` rules can block as it stands");
        self.push(d);
    }

    fn warn_shadowed(&mut self, rules: &[RuleDef]) {
        // A shadow allow rule exempts nothing, so it hides no rule.
        let enforced_allow =
            |r: &&RuleDef| r.node.enabled && r.node.mode == Mode::Enforce && r.node.effect.node == Effect::Allow;
        for allow in rules.iter().filter(enforced_allow) {
            let allow_parts = conjuncts(&allow.node.condition.node);
            for rule in rules.iter().filter(|r| matches!(r.node.effect.node, Effect::Score(_))) {
                let parts = conjuncts(&rule.node.condition.node);
                if allow_parts.iter().all(|a| parts.contains(a)) {
                    let d = self
                        .at(
                            DiagnosticKind::ShadowedRule {
                                rule: rule.node.name.node.clone(),
                                allow: allow.node.name.node.clone(),
                            },
                            &rule.node.name.loc,
                        )
                        .with_label("never changes a decision")
                        .with_help(format!(
                            "every request this rule scores is allowed outright by `{}`; narrow the allow rule or remove this one",
                            allow.node.name.node
                        ));
                    self.push(d);
                }
            }
        }
    }
}

/// The top-level `and` operands of a condition (the condition itself if it
/// is not an `and`).
fn conjuncts(e: &ExprKind) -> Vec<&ExprKind> {
    match e {
        ExprKind::And(items) => items.iter().map(|i| &i.node).collect(),
        other => vec![other],
    }
}

pub(super) fn has_non_string(lit: &Literal) -> bool {
    match lit {
        Literal::List(items) => items.iter().any(|i| !matches!(i.node, Literal::String(_))),
        _ => false,
    }
}

pub(super) fn default_example(ty: Type) -> &'static str {
    match ty {
        Type::String => "write a string, e.g. `= \"\"`",
        Type::Bool => "write `= true` or `= false`",
        Type::Number => "write a number, e.g. `= 0`",
        Type::StringList => "write a list of strings, e.g. `= []` or `= [\"a\"]`",
    }
}
