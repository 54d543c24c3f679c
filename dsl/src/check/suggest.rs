//! "Did you mean …?" suggestions.

/// The candidate closest to `word`, when it is close enough to be a likely
/// typo (Jaro-Winkler similarity of at least 0.8).
pub(crate) fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(a.1)))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn suggests_the_closest_declared_name() {
        let fields = ["metadata.contains_personal_data", "metadata.is_external_model", "model"];
        assert_eq!(closest("metadata.contains_pii", fields), Some("metadata.contains_personal_data"));
        assert_eq!(closest("modle", fields), Some("model"));
        assert_eq!(closest("zzz", fields), None);
    }
}
