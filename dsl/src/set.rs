//! A checked policy set: what the engine compiles.

use crate::ast::{Expectation, FieldPath, Literal, Presence, Rule, Type};
use crate::err::Diagnostic;
use crate::source::{Loc, Node, SourceFile};

/// Block when the summed score is at or above this, unless a set says
/// otherwise.
pub const DEFAULT_THRESHOLD: i64 = 50;

/// Content fields refused anywhere in a request, unless a set lists its own.
pub const DEFAULT_FORBIDDEN_FIELDS: [&str; 6] = ["prompt", "text", "input", "message", "messages", "content"];

/// The outcome of [`crate::check`]: the set, if it has no errors, and every
/// diagnostic (errors and warnings) found on the way.
#[derive(Debug)]
pub struct Checked {
    /// The checked set; `None` when any diagnostic is an error.
    pub set: Option<PolicySet>,
    /// Errors and warnings, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

/// All files of a policy directory, parsed and checked as one unit.
#[derive(Debug, Clone)]
pub struct PolicySet {
    /// The files, sorted by name; a [`Loc`]'s `file` indexes this.
    pub sources: Vec<SourceFile>,
    /// Declared input fields, in declaration order.
    pub fields: Vec<FieldSpec>,
    /// Declared parameters, in declaration order (by file name, then
    /// position).
    pub params: Vec<ParamSpec>,
    /// Block when the summed score reaches this.
    pub threshold: i64,
    /// Where the threshold was set, if it was.
    pub threshold_loc: Option<Loc>,
    /// Field names refused anywhere in a request.
    pub forbidden_fields: Vec<String>,
    /// Rules in source order: by file name, then position.
    pub rules: Vec<RuleDef>,
    /// Test blocks in source order.
    pub tests: Vec<TestDef>,
}

impl PolicySet {
    /// `file:line` of a location, for listings and traces.
    pub fn position(&self, loc: &Loc) -> String {
        match self.sources.get(loc.file) {
            Some(f) => format!("{}:{}", f.name, f.line_col(loc.span.start).0),
            None => String::from("<unknown>"),
        }
    }

    /// The file a location points into.
    pub fn source(&self, loc: &Loc) -> Option<&SourceFile> {
        self.sources.get(loc.file)
    }
}

/// A declared input field.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldSpec {
    /// Its path from the request root.
    pub path: FieldPath,
    /// Its type.
    pub ty: Type,
    /// Required, optional, or defaulted.
    pub presence: Presence,
    /// Where it was declared.
    pub loc: Loc,
}

impl FieldSpec {
    /// Whether every request has a value for this field once defaults apply.
    pub fn always_present(&self) -> bool {
        !matches!(self.presence, Presence::Optional)
    }
}

/// A declared parameter: `param NAME: TYPE = VALUE`.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    /// Its name, as conditions write it after `param.`.
    pub name: String,
    /// Its type.
    pub ty: Type,
    /// The value written in the file, of type `ty`: a string, a number, a
    /// bool, or a list of strings.
    pub default: Literal,
    /// Where it was declared.
    pub loc: Loc,
}

/// A checked rule.
pub type RuleDef = Node<Rule>;

/// A checked test block.
#[derive(Debug, Clone, PartialEq)]
pub struct TestDef {
    /// The test's name.
    pub name: String,
    /// The request.
    pub input: serde_json::Value,
    /// Overrides, as JSON in the shape the engine's `Overrides` takes.
    pub overrides: Option<Node<serde_json::Value>>,
    /// The expected outcome.
    pub expect: Expectation,
    /// What the shadow rules should make of the request (`expect shadow`).
    pub expect_shadow: Option<crate::ast::ShadowExpectation>,
    /// Where the test is.
    pub loc: Loc,
}
