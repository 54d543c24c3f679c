//! The abstract syntax tree of one policy file.
//!
//! Every node carries its [`Loc`]; equality ignores locations, so
//! `parse(fmt(ast)) == ast` holds however the text was laid out.

use crate::source::Node;

/// A parsed file: its items in source order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PolicyFile {
    /// Top-level items in source order.
    pub items: Vec<Item>,
}

/// A top-level item.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// `input { ... }`: declared request fields.
    Input(Node<InputBlock>),
    /// `param NAME: TYPE = VALUE`: a policy parameter.
    Param(Node<ParamDecl>),
    /// `threshold 50`.
    Threshold(Node<i64>),
    /// `forbidden_fields ["prompt", ...]`.
    ForbiddenFields(Node<Vec<Node<String>>>),
    /// `rule name { ... }`.
    Rule(Node<Rule>),
    /// `test "name" { ... }`.
    Test(Node<TestCase>),
}

/// `input { ... }`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InputBlock {
    /// The declared fields.
    pub fields: Vec<Node<FieldDecl>>,
}

/// `param approved_models: list<string> = ["gpt-4"]`: a typed value that
/// conditions read as `param.approved_models`, with the default written
/// here. Admins may set another value for the whole fleet or for one
/// customer; decisions use the value in force for the request's customer.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamDecl {
    /// The parameter's name (an identifier, unique across the set).
    pub name: Node<String>,
    /// Its type.
    pub ty: Node<Type>,
    /// The default value, of type `ty` (the checker enforces it).
    pub default: Node<Literal>,
}

/// One declared field, e.g. `metadata.contains_personal_data: bool = false`.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDecl {
    /// Dotted path from the request root.
    pub path: Node<FieldPath>,
    /// Declared type.
    pub ty: Node<Type>,
    /// Whether it must be present, may be absent, or has a default.
    pub presence: Presence,
}

/// A dotted field path such as `metadata.intent`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath(pub Vec<String>);

impl FieldPath {
    /// Parses `a.b.c`; the grammar guarantees non-empty segments.
    pub fn from_dotted(s: &str) -> Self {
        Self(s.split('.').map(str::to_owned).collect())
    }

    /// The segments.
    pub fn segments(&self) -> &[String] {
        &self.0
    }
}

impl std::fmt::Display for FieldPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

/// The type of a declared field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Type {
    /// `string`
    String,
    /// `bool`
    Bool,
    /// `number` (a 64-bit float)
    Number,
    /// `list<string>`
    StringList,
}

impl Type {
    /// The type as written in the language.
    pub fn name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Bool => "bool",
            Self::Number => "number",
            Self::StringList => "list<string>",
        }
    }
}

impl std::fmt::Display for Type {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether a field must be present.
#[derive(Debug, Clone, PartialEq)]
pub enum Presence {
    /// `model: string`: a request without it is rejected.
    Required,
    /// `metadata.intent: string?`: may be absent; comparisons with it are false.
    Optional,
    /// `metadata.flag: bool = false`: absent means the default.
    Default(Node<Literal>),
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `"text"`
    String(String),
    /// `42`, `-1.5`
    Number(f64),
    /// `true`, `false`
    Bool(bool),
    /// `["a", "b"]`, only as the default of a `list<string>` field.
    List(Vec<Node<Literal>>),
}

impl Literal {
    /// The type of this literal, for scalar literals and string lists.
    pub fn ty(&self) -> Option<Type> {
        match self {
            Self::String(_) => Some(Type::String),
            Self::Number(_) => Some(Type::Number),
            Self::Bool(_) => Some(Type::Bool),
            Self::List(items) => items.iter().all(|i| matches!(i.node, Self::String(_))).then_some(Type::StringList),
        }
    }
}

/// `rule name { ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The rule's unique key.
    pub name: Node<String>,
    /// `description "..."`.
    pub description: Node<String>,
    /// `enabled false` ships a rule switched off; absent means enabled.
    pub enabled: bool,
    /// `mode shadow` evaluates the rule on every request without letting it
    /// change the decision; absent (or `mode enforce`) means enforced.
    pub mode: Mode,
    /// `when <condition>`.
    pub condition: Expr,
    /// `score +70`, `deny` or `allow`.
    pub effect: Node<Effect>,
    /// `reason code`.
    pub reason: Node<String>,
}

/// How an enabled rule takes part in decisions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// `mode enforce` (the default): the rule's effect counts.
    #[default]
    Enforce,
    /// `mode shadow`: the rule is evaluated and reported (in the decision's
    /// `shadow` list and `shadow_outcome`) but never changes `allowed`,
    /// `risk_score` or `reason`.
    Shadow,
}

impl Mode {
    /// The mode as written: `enforce` or `shadow`.
    pub fn keyword(self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::Shadow => "shadow",
        }
    }
}

/// What a rule does when its condition holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Adds to the risk score (may be negative).
    Score(i64),
    /// Blocks the request outright. Deny wins over allow and over scores.
    Deny,
    /// Allows the request outright, whatever the score (an exemption).
    Allow,
}

/// A condition.
pub type Expr = Node<ExprKind>;

/// The shapes a condition can take.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// A literal, e.g. `true` or `"gpt-4"`.
    Literal(Literal),
    /// A field, e.g. `metadata.contains_personal_data`.
    Field(FieldPath),
    /// A parameter's value, e.g. `param.max_tokens`: a value like a
    /// literal, fixed for each customer when the policy is prepared.
    Param(String),
    /// `not e`
    Not(Box<Expr>),
    /// `a and b and ...` (at least two operands).
    And(Vec<Expr>),
    /// `a or b or ...` (at least two operands).
    Or(Vec<Expr>),
    /// `a == b`, `a < b`, ...
    Compare {
        /// The operator.
        op: CompareOp,
        /// Left operand.
        lhs: Box<Expr>,
        /// Right operand.
        rhs: Box<Expr>,
    },
    /// `a in ["x", "y"]`.
    In {
        /// The value looked up.
        lhs: Box<Expr>,
        /// The list of literals.
        list: Vec<Node<Literal>>,
    },
    /// `a in param.list`: the list is a `list<string>` parameter.
    InParam {
        /// The value looked up.
        lhs: Box<Expr>,
        /// The parameter's name.
        param: Node<String>,
    },
    /// `a starts_with "x"`, `ends_with`, `contains`, `matches`.
    Text {
        /// The operator.
        op: TextOp,
        /// The string (or list, for `contains`) operand.
        lhs: Box<Expr>,
        /// The literal pattern.
        pattern: Node<String>,
    },
    /// `exists(field)`.
    Exists(Node<FieldPath>),
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CompareOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Eq => "==",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        }
    }

    /// The operator with its operands swapped: `a < b` is `b > a`.
    pub fn flipped(self) -> Self {
        match self {
            Self::Eq | Self::Ne => self,
            Self::Lt => Self::Gt,
            Self::Le => Self::Ge,
            Self::Gt => Self::Lt,
            Self::Ge => Self::Le,
        }
    }

    /// Whether the operator only applies to numbers.
    pub fn is_ordering(self) -> bool {
        !matches!(self, Self::Eq | Self::Ne)
    }
}

/// String operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextOp {
    /// `starts_with`
    StartsWith,
    /// `ends_with`
    EndsWith,
    /// `contains`: a substring of a string, or an element of a list.
    Contains,
    /// `matches`: a regular expression search.
    Matches,
}

impl TextOp {
    /// The operator as written.
    pub fn keyword(self) -> &'static str {
        match self {
            Self::StartsWith => "starts_with",
            Self::EndsWith => "ends_with",
            Self::Contains => "contains",
            Self::Matches => "matches",
        }
    }
}

/// `test "name" { input {...} overrides {...} expect ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct TestCase {
    /// The test's name.
    pub name: Node<String>,
    /// The request to decide.
    pub input: Node<serde_json::Value>,
    /// Per-customer overrides to decide with, as the server would pass them.
    pub overrides: Option<Node<serde_json::Value>>,
    /// The expected outcome.
    pub expect: Node<Expectation>,
    /// `expect shadow …`: what the shadow rules should make of the request.
    pub expect_shadow: Option<Node<ShadowExpectation>>,
}

/// What a test expects of the shadow rules (`expect shadow …`).
#[derive(Debug, Clone, PartialEq)]
pub enum ShadowExpectation {
    /// `expect shadow none`: no shadow rule's condition holds.
    None,
    /// `expect shadow allowed|blocked [score N] [reason code]`: the
    /// decision had the shadow rules been enforced. Its `allowed`, `score`
    /// and `reason` are as in [`Expectation::Decision`].
    Outcome {
        /// `allowed` or `blocked`.
        allowed: bool,
        /// The expected risk score, if stated.
        score: Option<i64>,
        /// The expected reason code, if stated.
        reason: Option<String>,
    },
}

/// What a test expects.
#[derive(Debug, Clone, PartialEq)]
pub enum Expectation {
    /// `expect allowed|blocked [score N] [reason code]`.
    Decision {
        /// `allowed` or `blocked`.
        allowed: bool,
        /// The expected risk score, if stated.
        score: Option<i64>,
        /// The expected reason code, if stated.
        reason: Option<String>,
    },
    /// `expect rejected code ["path"]`: the request is refused before
    /// evaluation, e.g. `rejected forbidden_field "metadata.prompt"`.
    Rejected {
        /// The rejection code.
        code: String,
        /// The path named by the rejection, if stated.
        path: Option<String>,
    },
}
