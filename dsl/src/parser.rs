//! Text → AST. A pipeline of small steps: a lexical pre-pass ([`scan`]), the
//! pest grammar (`parser/warden.pest`), then one builder function per grammar
//! rule that turns the concrete tree into the [`crate::ast`] types.

mod build;
pub(crate) use build::literal_kind_name;
mod expr;
pub(crate) mod literal;
pub mod scan;
mod syntax_error;

use pest::Parser as _;

use crate::ast::PolicyFile;
use crate::err::{Diagnostic, DiagnosticKind};
use crate::source::{FileId, Loc, SourceFile};

#[derive(pest_derive::Parser, Debug)]
#[grammar = "parser/warden.pest"]
pub(crate) struct WardenParser;

/// Parses one file. On failure returns every error found: one for a syntax
/// error (the parser can't recover past it), or all errors from building the
/// AST (bad escapes, missing or repeated rule parts, ...).
pub fn parse_file(file: &SourceFile, id: FileId) -> Result<PolicyFile, Vec<Diagnostic>> {
    let pre = scan::scan(&file.text);
    if let Some(at) = pre.too_deep_at {
        let diag =
            Diagnostic::new(DiagnosticKind::NestingTooDeep { limit: scan::MAX_NESTING, what: "levels of brackets" })
                .at(file, &Loc::new(id, at..at + 1))
                .with_label("this bracket is too deeply nested")
                .with_help("split the condition into simpler rules");
        return Err(vec![diag]);
    }
    // Record which tokens pest tried, so a syntax error can say what was
    // expected in words.
    pest::set_error_detail(true);
    let mut pairs =
        WardenParser::parse(Rule::file, &file.text).map_err(|e| vec![syntax_error::to_diagnostic(&e, file, id)])?;
    let mut builder = build::Builder::new(file, id);
    let ast = match pairs.next() {
        Some(root) => builder.file(root),
        None => PolicyFile::default(),
    };
    if builder.errors.is_empty() { Ok(ast) } else { Err(builder.errors) }
}

/// Parses text that is not part of any set, e.g. for `warden fmt` or tests.
pub fn parse_str(name: &str, text: &str) -> Result<PolicyFile, Vec<Diagnostic>> {
    parse_file(&SourceFile::new(name, text), 0)
}
