//! Diagnostics: every error and warning the language reports.
//!
//! A [`Diagnostic`] is a kind (what went wrong, as a typed enum) plus where it
//! happened, a short label for the caret, and an optional `help` line. It
//! implements [`miette::Diagnostic`], so the CLI renders it with the source
//! line and a caret under the span.

use std::fmt;
use std::sync::Arc;

use miette::{LabeledSpan, NamedSource, SourceSpan};

use crate::source::{Loc, SourceFile};

/// How serious a diagnostic is. Errors stop a set from compiling; warnings
/// don't.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The set cannot be compiled.
    Error,
    /// The set compiles, but something in it is probably a mistake.
    Warning,
}

/// What went wrong. Messages are lowercase, name identifiers in backticks and
/// say what was expected; advice goes in the diagnostic's `help`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DiagnosticKind {
    /// The text does not follow the grammar.
    #[error("syntax error: expected {expected}")]
    Syntax {
        /// What the parser would have accepted, in words.
        expected: String,
    },
    /// The file nests brackets deeper than the parser allows.
    #[error("nesting is too deep: at most {limit} {what} are allowed")]
    NestingTooDeep {
        /// The limit.
        limit: usize,
        /// What is counted, e.g. "levels of brackets".
        what: &'static str,
    },
    /// A string literal holds an escape the language doesn't know.
    #[error("invalid escape `{escape}` in a string")]
    InvalidEscape {
        /// The escape as written.
        escape: String,
    },
    /// A number that can't be represented.
    #[error("number `{text}` is out of range: {expected}")]
    NumberOutOfRange {
        /// The literal as written.
        text: String,
        /// The range that is accepted.
        expected: String,
    },
    /// A rule or test lacks a required part.
    #[error("{owner} is missing its `{part}`")]
    MissingPart {
        /// `rule \`x\`` or `test \"y\"`.
        owner: String,
        /// The missing keyword.
        part: &'static str,
    },
    /// A rule or test states one part twice.
    #[error("{owner} states `{part}` more than once")]
    DuplicatePart {
        /// `rule \`x\`` or `test \"y\"`.
        owner: String,
        /// The repeated keyword.
        part: &'static str,
    },
    /// A condition names a field no `input` block declares.
    #[error("unknown field `{path}`")]
    UnknownField {
        /// The field as written.
        path: String,
    },
    /// A field is declared twice.
    #[error("field `{path}` is declared more than once")]
    DuplicateField {
        /// The field path.
        path: String,
    },
    /// A field is declared both as a value and as an object holding fields.
    #[error("field `{path}` is declared as a value, so `{child}` cannot be declared under it")]
    FieldConflict {
        /// The value field.
        path: String,
        /// The field declared under it.
        child: String,
    },
    /// A declared field uses one of the forbidden content field names.
    #[error("field `{path}` is a forbidden content field and can never be read")]
    ForbiddenFieldDeclared {
        /// The field path.
        path: String,
    },
    /// Operand types don't fit the operator.
    #[error("type mismatch: {message}")]
    TypeMismatch {
        /// What was found and what was expected.
        message: String,
    },
    /// Two rules share a name.
    #[error("rule `{name}` is defined more than once")]
    DuplicateRule {
        /// The name.
        name: String,
    },
    /// A `matches` pattern is not a valid regular expression.
    #[error("invalid regular expression: {message}")]
    InvalidRegex {
        /// The regex engine's complaint, on one line.
        message: String,
    },
    /// A condition, or a comparison in it, has the same value for every request.
    #[error("this condition is always {value}")]
    ConstantCondition {
        /// The constant value.
        value: bool,
    },
    /// A set-wide setting is given more than once.
    #[error("`{setting}` is set more than once in the policy set")]
    DuplicateSetting {
        /// `threshold` or `forbidden_fields`.
        setting: &'static str,
    },
    /// A test block is malformed (bad overrides, unknown rule or reason).
    #[error("invalid test: {message}")]
    InvalidTest {
        /// What is wrong.
        message: String,
    },
    /// A JSON object in a test block gives the same key twice. A request
    /// doing so is refused (`duplicate_key`), so a test can't send one.
    #[error("key `{path}` appears more than once in the same JSON object")]
    DuplicateKey {
        /// The repeated key with the path to it, e.g. `metadata.flag`.
        path: String,
    },
    /// The parser met a shape its grammar should have ruled out. This is a bug
    /// in Warden, reported instead of panicking; the fuzz targets hunt for it.
    #[error("internal error: {message}")]
    Internal {
        /// What was unexpected.
        message: String,
    },
    /// A condition reads `param.NAME` and no `param NAME` is declared.
    #[error("parameter `{name}` is not declared")]
    UnknownParam {
        /// The name as written after `param.`.
        name: String,
    },
    /// Two `param` declarations have the same name.
    #[error("parameter `{name}` is declared more than once")]
    DuplicateParam {
        /// The name.
        name: String,
    },
    /// Warning: a parameter no rule reads.
    #[error("parameter `{name}` is declared but no rule reads it")]
    UnusedParam {
        /// The name.
        name: String,
    },
    /// The policy set holds no files.
    #[error("the policy set is empty: no `.warden` files were found")]
    EmptySet,
    /// Warning: the threshold can't be reached by any combination of scores.
    #[error("threshold {threshold} can never be reached: all enabled rules together score at most {max}")]
    UnreachableThreshold {
        /// The threshold.
        threshold: i64,
        /// The largest possible sum of enabled scores.
        max: i64,
    },
    /// Warning: an allow rule fires whenever a score rule does, so that rule
    /// never changes a decision.
    #[error("rule `{rule}` can never change a decision: allow rule `{allow}` fires whenever it does")]
    ShadowedRule {
        /// The shadowed rule.
        rule: String,
        /// The allow rule that shadows it.
        allow: String,
    },
}

impl DiagnosticKind {
    /// A stable, machine-readable code, e.g. `unknown_field`. Tests and the
    /// case corpus match on this, never on message text.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Syntax { .. } => "syntax",
            Self::NestingTooDeep { .. } => "nesting_too_deep",
            Self::InvalidEscape { .. } => "invalid_escape",
            Self::NumberOutOfRange { .. } => "number_out_of_range",
            Self::MissingPart { .. } => "missing_part",
            Self::DuplicatePart { .. } => "duplicate_part",
            Self::UnknownField { .. } => "unknown_field",
            Self::DuplicateField { .. } => "duplicate_field",
            Self::FieldConflict { .. } => "field_conflict",
            Self::ForbiddenFieldDeclared { .. } => "forbidden_field_declared",
            Self::TypeMismatch { .. } => "type_mismatch",
            Self::DuplicateRule { .. } => "duplicate_rule",
            Self::InvalidRegex { .. } => "invalid_regex",
            Self::ConstantCondition { .. } => "constant_condition",
            Self::DuplicateSetting { .. } => "duplicate_setting",
            Self::InvalidTest { .. } => "invalid_test",
            Self::DuplicateKey { .. } => "duplicate_key",
            Self::Internal { .. } => "internal",
            Self::UnknownParam { .. } => "unknown_param",
            Self::DuplicateParam { .. } => "duplicate_param",
            Self::UnusedParam { .. } => "unused_param",
            Self::EmptySet => "empty_set",
            Self::UnreachableThreshold { .. } => "unreachable_threshold",
            Self::ShadowedRule { .. } => "shadowed_rule",
        }
    }

    fn severity(&self) -> Severity {
        match self {
            Self::UnreachableThreshold { .. } | Self::ShadowedRule { .. } | Self::UnusedParam { .. } => {
                Severity::Warning
            }
            _ => Severity::Error,
        }
    }
}

/// One error or warning, with where it happened. Boxed, so that results
/// carrying one stay small.
#[derive(Debug, Clone)]
pub struct Diagnostic(Box<Inner>);

#[derive(Debug, Clone)]
struct Inner {
    kind: DiagnosticKind,
    source: Option<Located>,
    label: Option<String>,
    help: Option<String>,
    severity: Severity,
}

#[derive(Debug, Clone)]
struct Located {
    source: NamedSource<Arc<str>>,
    span: SourceSpan,
    /// `file:line:col`, computed once so `Display` and JSON output agree.
    position: String,
}

impl Diagnostic {
    /// A diagnostic of `kind` with no location yet.
    pub fn new(kind: DiagnosticKind) -> Self {
        let severity = kind.severity();
        Self(Box::new(Inner { kind, source: None, label: None, help: None, severity }))
    }

    /// Places the diagnostic at `loc` in `file`.
    #[must_use]
    pub fn at(mut self, file: &SourceFile, loc: &Loc) -> Self {
        let start = loc.span.start.min(file.text.len());
        let end = loc.span.end.clamp(start, file.text.len());
        let (line, col) = file.line_col(start);
        self.0.source = Some(Located {
            source: NamedSource::new(&file.name, Arc::clone(&file.text)),
            span: SourceSpan::from(start..end),
            position: format!("{}:{line}:{col}", file.name),
        });
        self
    }

    /// Text shown next to the caret.
    #[must_use]
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.0.label = Some(label.into());
        self
    }

    /// A `help` line suggesting a fix.
    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.0.help = Some(help.into());
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> &DiagnosticKind {
        &self.0.kind
    }

    /// The stable code of the kind, e.g. `unknown_field`.
    pub fn code(&self) -> &'static str {
        self.0.kind.code()
    }

    /// Error or warning.
    pub fn severity(&self) -> Severity {
        self.0.severity
    }

    /// Whether this is an error (rather than a warning).
    pub fn is_error(&self) -> bool {
        self.0.severity == Severity::Error
    }

    /// `file:line:col`, when the diagnostic has a location.
    pub fn position(&self) -> Option<&str> {
        self.0.source.as_ref().map(|l| l.position.as_str())
    }

    /// The help line, if any.
    pub fn help_text(&self) -> Option<&str> {
        self.0.help.as_deref()
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position() {
            Some(pos) => write!(f, "{pos}: {}", self.0.kind),
            None => write!(f, "{}", self.0.kind),
        }
    }
}

impl std::error::Error for Diagnostic {}

impl miette::Diagnostic for Diagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(format!("warden::{}", self.0.kind.code())))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.0.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.0.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.0.source.as_ref().map(|l| &l.source as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let located = self.0.source.as_ref()?;
        let label = LabeledSpan::new_with_span(self.0.label.clone(), located.span);
        Some(Box::new(std::iter::once(label)))
    }
}

/// Whether any diagnostic in `diagnostics` is an error.
pub fn has_errors(diagnostics: &[Diagnostic]) -> bool {
    diagnostics.iter().any(Diagnostic::is_error)
}

/// Renders a diagnostic as a policy author reads it: `file:line:col`, the
/// source line, a caret under the span, and the `help` line. ANSI colours
/// only when `color` is set.
pub fn render(diagnostic: &Diagnostic, color: bool) -> String {
    use miette::{GraphicalReportHandler, GraphicalTheme};
    let theme = if color { GraphicalTheme::ascii() } else { GraphicalTheme::none() };
    let handler = GraphicalReportHandler::new_themed(theme).with_links(false).with_width(100);
    let mut out = String::new();
    if handler.render_report(&mut out, diagnostic).is_err() {
        // Rendering into a String can't fail on I/O; fall back to one line.
        out = diagnostic.to_string();
    }
    out
}
