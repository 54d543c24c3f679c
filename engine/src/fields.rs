//! Which declared fields a policy's decisions depend on: what a replay of
//! recorded requests must have faithful values for.

use std::collections::BTreeSet;

use warden_dsl::ast::{Expr, ExprKind};

use crate::policy::Policy;

impl Policy {
    /// The dotted paths of the fields some rule's condition reads (any
    /// rule, enabled or not, enforced or in shadow: an override can switch
    /// any of them on), with the fields every request must carry
    /// (required ones), sorted.
    pub fn fields_decided_on(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for rule in &self.set.rules {
            collect(&rule.node.condition, &mut out);
        }
        for f in &self.set.fields {
            if matches!(f.presence, warden_dsl::ast::Presence::Required) {
                out.insert(f.path.to_string());
            }
        }
        out
    }

    /// Every declared field's dotted path with its default (as JSON, as an
    /// audit record holds it: numbers as 64-bit floats), in declaration
    /// order.
    pub fn declared_field_defaults(&self) -> Vec<(String, Option<serde_json::Value>)> {
        self.set
            .fields
            .iter()
            .map(|f| {
                let default = match &f.presence {
                    warden_dsl::ast::Presence::Default(lit) => literal_json(&lit.node),
                    _ => None,
                };
                (f.path.to_string(), default)
            })
            .collect()
    }
}

/// A literal as JSON; `None` for a number JSON can't hold.
fn literal_json(lit: &warden_dsl::ast::Literal) -> Option<serde_json::Value> {
    use warden_dsl::ast::Literal;
    Some(match lit {
        Literal::String(s) => serde_json::Value::String(s.clone()),
        Literal::Number(n) => serde_json::Value::Number(serde_json::Number::from_f64(*n)?),
        Literal::Bool(b) => serde_json::Value::Bool(*b),
        Literal::List(items) => {
            serde_json::Value::Array(items.iter().map(|i| literal_json(&i.node)).collect::<Option<Vec<_>>>()?)
        }
    })
}

/// Adds the fields `e` reads to `out`.
fn collect(e: &Expr, out: &mut BTreeSet<String>) {
    match &e.node {
        ExprKind::Literal(_) | ExprKind::Param(_) => {}
        ExprKind::Field(p) => {
            out.insert(p.to_string());
        }
        ExprKind::Exists(p) => {
            out.insert(p.node.to_string());
        }
        ExprKind::Not(inner) => collect(inner, out),
        ExprKind::And(items) | ExprKind::Or(items) => items.iter().for_each(|i| collect(i, out)),
        ExprKind::Compare { lhs, rhs, .. } => {
            collect(lhs, out);
            collect(rhs, out);
        }
        ExprKind::In { lhs, .. } | ExprKind::InParam { lhs, .. } | ExprKind::Text { lhs, .. } => collect(lhs, out),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)] // tests fail loudly

    use warden_dsl::SourceFile;

    use crate::Policy;

    #[test]
    fn lists_the_fields_conditions_read_and_the_required_ones() {
        let text = r#"
input { model: string  operation: string?  metadata.a: bool = false  metadata.b: number = 0  metadata.c: string?  metadata.unused: bool = false }
rule r1 { description "d" enabled false when metadata.a and not exists(metadata.c) score +1 reason r }
rule r2 { description "d" mode shadow when metadata.b > 3 or operation starts_with "x" deny reason r }
"#;
        let policy = match Policy::from_sources(vec![SourceFile::new("p.warden", text)]) {
            Ok((p, _)) => p,
            Err(e) => panic!("{:?}", e.iter().map(ToString::to_string).collect::<Vec<_>>()),
        };
        let got: Vec<String> = policy.fields_decided_on().into_iter().collect();
        assert_eq!(got, ["metadata.a", "metadata.b", "metadata.c", "model", "operation"]);
        let declared = policy.declared_field_defaults();
        assert_eq!(declared.len(), 6);
        assert_eq!(declared[2], ("metadata.a".to_owned(), Some(serde_json::json!(false))));
        assert_eq!(declared[3], ("metadata.b".to_owned(), Some(serde_json::json!(0.0))));
        assert_eq!(declared[4], ("metadata.c".to_owned(), None));
    }
}
