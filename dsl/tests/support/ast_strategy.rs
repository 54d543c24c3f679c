//! proptest strategies for syntactically valid ASTs (not necessarily ones
//! that pass the checker).

use proptest::prelude::*;
use warden_dsl::Node;
use warden_dsl::ast::{
    CompareOp, Effect, Expectation, Expr, ExprKind, FieldDecl, FieldPath, InputBlock, Item, Literal, Mode, ParamDecl,
    PolicyFile, Presence, Rule, ShadowExpectation, TestCase, TextOp, Type,
};

const RESERVED: [&str; 13] = [
    "and",
    "or",
    "not",
    "in",
    "true",
    "false",
    "null",
    "exists",
    "starts_with",
    "ends_with",
    "contains",
    "matches",
    "param",
];

fn ident() -> impl Strategy<Value = String> {
    "[a-zA-Z_][a-zA-Z0-9_]{0,8}"
}

fn path() -> impl Strategy<Value = FieldPath> {
    (ident().prop_filter("not a keyword", |s| !RESERVED.contains(&s.as_str())), prop::collection::vec(ident(), 0..3))
        .prop_map(|(first, rest)| FieldPath(std::iter::once(first).chain(rest).collect()))
}

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![-1000i32..1000i32, any::<i32>()]
        .prop_map(f64::from)
        .boxed()
        .prop_union(prop::num::f64::NORMAL.prop_filter("finite", |f| f.is_finite()).boxed())
}

fn scalar() -> impl Strategy<Value = Literal> {
    prop_oneof![
        any::<String>().prop_map(Literal::String),
        number().prop_map(Literal::Number),
        any::<bool>().prop_map(Literal::Bool),
    ]
}

fn magnitude() -> impl Strategy<Value = i64> {
    -1_000_000_000i64..=1_000_000_000
}

fn operand() -> impl Strategy<Value = Expr> {
    prop_oneof![
        path().prop_map(ExprKind::Field),
        scalar().prop_map(ExprKind::Literal),
        ident().prop_map(ExprKind::Param)
    ]
    .prop_map(Node::bare)
}

fn compare_op() -> impl Strategy<Value = CompareOp> {
    prop_oneof![
        Just(CompareOp::Eq),
        Just(CompareOp::Ne),
        Just(CompareOp::Lt),
        Just(CompareOp::Le),
        Just(CompareOp::Gt),
        Just(CompareOp::Ge)
    ]
}

fn text_op() -> impl Strategy<Value = TextOp> {
    prop_oneof![Just(TextOp::StartsWith), Just(TextOp::EndsWith), Just(TextOp::Contains), Just(TextOp::Matches)]
}

fn leaf() -> impl Strategy<Value = Expr> {
    prop_oneof![
        operand(),
        (compare_op(), operand(), operand()).prop_map(|(op, l, r)| Node::bare(ExprKind::Compare {
            op,
            lhs: Box::new(l),
            rhs: Box::new(r)
        })),
        (operand(), prop::collection::vec(scalar().prop_map(Node::bare), 0..4))
            .prop_map(|(l, list)| Node::bare(ExprKind::In { lhs: Box::new(l), list })),
        (text_op(), operand(), any::<String>()).prop_map(|(op, l, p)| Node::bare(ExprKind::Text {
            op,
            lhs: Box::new(l),
            pattern: Node::bare(p)
        })),
        path().prop_map(|p| Node::bare(ExprKind::Exists(Node::bare(p)))),
        (operand(), ident())
            .prop_map(|(l, p)| Node::bare(ExprKind::InParam { lhs: Box::new(l), param: Node::bare(p) })),
    ]
}

pub fn expr() -> impl Strategy<Value = Expr> {
    leaf().prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| Node::bare(ExprKind::Not(Box::new(e)))),
            prop::collection::vec(inner.clone(), 2..4).prop_map(|v| Node::bare(ExprKind::And(v))),
            prop::collection::vec(inner, 2..4).prop_map(|v| Node::bare(ExprKind::Or(v))),
        ]
    })
}

fn json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        prop::num::f64::NORMAL.prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = serde_json::Value> {
    prop::collection::btree_map(any::<String>(), json(), 0..4)
        .prop_map(|m| serde_json::Value::Object(m.into_iter().collect()))
}

fn field_decl() -> impl Strategy<Value = Node<FieldDecl>> {
    let ty = prop_oneof![Just(Type::String), Just(Type::Bool), Just(Type::Number), Just(Type::StringList)];
    let presence = prop_oneof![
        Just(Presence::Required),
        Just(Presence::Optional),
        scalar().prop_map(|l| Presence::Default(Node::bare(l))),
        prop::collection::vec(scalar().prop_map(Node::bare), 0..3)
            .prop_map(|l| Presence::Default(Node::bare(Literal::List(l)))),
    ];
    (path(), ty, presence)
        .prop_map(|(p, t, presence)| Node::bare(FieldDecl { path: Node::bare(p), ty: Node::bare(t), presence }))
}

fn param_decl() -> impl Strategy<Value = Node<ParamDecl>> {
    let ty = prop_oneof![Just(Type::String), Just(Type::Bool), Just(Type::Number), Just(Type::StringList)];
    let value =
        prop_oneof![scalar(), prop::collection::vec(scalar().prop_map(Node::bare), 0..3).prop_map(Literal::List),];
    (ident(), ty, value).prop_map(|(name, ty, default)| {
        Node::bare(ParamDecl { name: Node::bare(name), ty: Node::bare(ty), default: Node::bare(default) })
    })
}

fn rule() -> impl Strategy<Value = Node<Rule>> {
    let effect = prop_oneof![magnitude().prop_map(Effect::Score), Just(Effect::Deny), Just(Effect::Allow)];
    let mode = prop_oneof![Just(Mode::Enforce), Just(Mode::Shadow)];
    (ident(), any::<String>(), any::<bool>(), mode, expr(), effect, ident()).prop_map(
        |(name, description, enabled, mode, condition, effect, reason)| {
            Node::bare(Rule {
                name: Node::bare(name),
                description: Node::bare(description),
                enabled,
                mode,
                condition,
                effect: Node::bare(effect),
                reason: Node::bare(reason),
            })
        },
    )
}

fn test_case() -> impl Strategy<Value = Node<TestCase>> {
    let expect = prop_oneof![
        (any::<bool>(), prop::option::of(magnitude()), prop::option::of(ident()))
            .prop_map(|(allowed, score, reason)| Expectation::Decision { allowed, score, reason }),
        (ident(), prop::option::of(any::<String>())).prop_map(|(code, path)| Expectation::Rejected { code, path }),
    ];
    let shadow = prop_oneof![
        Just(ShadowExpectation::None),
        (any::<bool>(), prop::option::of(magnitude()), prop::option::of(ident()))
            .prop_map(|(allowed, score, reason)| ShadowExpectation::Outcome { allowed, score, reason }),
    ];
    (any::<String>(), json_object(), prop::option::of(json_object()), expect, prop::option::of(shadow)).prop_map(
        |(name, input, overrides, expect, expect_shadow)| {
            Node::bare(TestCase {
                name: Node::bare(name),
                input: Node::bare(input),
                overrides: overrides.map(Node::bare),
                expect: Node::bare(expect),
                expect_shadow: expect_shadow.map(Node::bare),
            })
        },
    )
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        prop::collection::vec(field_decl(), 0..4).prop_map(|fields| Item::Input(Node::bare(InputBlock { fields }))),
        magnitude().prop_map(|t| Item::Threshold(Node::bare(t))),
        param_decl().prop_map(Item::Param),
        prop::collection::vec(any::<String>().prop_map(Node::bare), 0..4)
            .prop_map(|l| Item::ForbiddenFields(Node::bare(l))),
        rule().prop_map(Item::Rule),
        test_case().prop_map(Item::Test),
    ]
}

pub fn policy_file() -> impl Strategy<Value = PolicyFile> {
    prop::collection::vec(item(), 0..6).prop_map(|items| PolicyFile { items })
}
