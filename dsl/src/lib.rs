//! The Warden rule language.
//!
//! Policy authors write rules in `.warden` files; this crate turns their text
//! into a checked [`PolicySet`] and reports every problem as a [`Diagnostic`]
//! with its `file:line:col`, the source line and a `help` line. It does no
//! I/O: the caller reads the files and passes their text in.
//!
//! ```
//! use warden_dsl::{SourceFile, check};
//! let src = SourceFile::new("a.warden", r#"
//! input { model: string }
//! rule internal { description "x" when model == "eval" allow reason internal }
//! "#);
//! let checked = check(vec![src]);
//! assert!(checked.set.is_some());
//! ```
#![warn(missing_docs)] // CI denies warnings: every public item is documented

pub mod ast;
mod check;
mod err;
pub mod fmt;
mod parser;
pub mod regex_limits;
mod set;
mod source;

pub use check::check;
pub use err::{Diagnostic, DiagnosticKind, Severity, has_errors, render};
pub use parser::literal::{format_number, quote};
pub use parser::scan::{Comment, MAX_NESTING};
pub use parser::{parse_file, parse_str};
pub use set::{
    Checked, DEFAULT_FORBIDDEN_FIELDS, DEFAULT_THRESHOLD, FieldSpec, ParamSpec, PolicySet, RuleDef, TestDef,
};
pub use source::{FileId, Loc, Node, SourceFile};
