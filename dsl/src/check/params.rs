//! `param` declarations: unique names, defaults of the declared type, and
//! the warning for parameters no rule reads.

use std::collections::HashSet;

use super::{Checker, default_example, has_non_string};
use crate::ast::ParamDecl;
use crate::err::DiagnosticKind;
use crate::set::ParamSpec;
use crate::source::Node;

/// The declarations that are sound, in source order; each problem is
/// reported.
pub(super) fn check_decls(ck: &mut Checker<'_>, decls: Vec<Node<ParamDecl>>) -> Vec<ParamSpec> {
    let mut out: Vec<ParamSpec> = Vec::with_capacity(decls.len());
    // Where each kept declaration's name is, for "first declared at".
    let mut names: Vec<crate::source::Loc> = Vec::with_capacity(decls.len());
    for decl in decls {
        let loc = decl.loc;
        let ParamDecl { name, ty, default } = decl.node;
        if let Some(first) = out.iter().position(|p| p.name == name.node).and_then(|i| names.get(i)) {
            let first_at = ck.sources.get(first.file).map(|f| {
                let (line, col) = f.line_col(first.span.start);
                format!("{}:{line}:{col}", f.name)
            });
            let d = ck
                .at(DiagnosticKind::DuplicateParam { name: name.node.clone() }, &name.loc)
                .with_label("declared again here")
                .with_help(format!(
                    "first declared at {}; parameter names are unique across all files",
                    first_at.unwrap_or_default()
                ));
            ck.push(d);
            continue;
        }
        if default.node.ty() != Some(ty.node) || has_non_string(&default.node) {
            let found = crate::parser::literal_kind_name(&default.node);
            let d = ck
                .at(
                    DiagnosticKind::TypeMismatch {
                        message: format!(
                            "the value of parameter `{}` is {found}, but the parameter is a `{}`",
                            name.node, ty.node
                        ),
                    },
                    &default.loc,
                )
                .with_label(format!("expected a `{}`", ty.node))
                .with_help(default_example(ty.node));
            // Kept, so that its uses are checked against its declared type
            // rather than reported as unknown; the set has an error anyway.
            ck.push(d);
        }
        names.push(name.loc);
        out.push(ParamSpec { name: name.node, ty: ty.node, default: default.node, loc });
    }
    out
}

/// Warns about each declared parameter no condition reads.
pub(super) fn warn_unused(ck: &mut Checker<'_>, params: &[ParamSpec], used: &HashSet<String>) {
    for p in params.iter().filter(|p| !used.contains(&p.name)) {
        let d = ck
            .at(DiagnosticKind::UnusedParam { name: p.name.clone() }, &p.loc)
            .with_label("never read")
            .with_help(format!("use it in a condition as `param.{}`, or remove it", p.name));
        ck.push(d);
    }
}
