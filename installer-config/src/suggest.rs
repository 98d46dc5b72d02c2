//! "did you mean `x`?" for misspelt keys.
//!
//! serde-saphyr reports an unknown key as a structured error
//! (`SerdeUnknownField { field, expected }`); when that shape is not available
//! (the error went through a path that only kept the text) the message is
//! parsed instead. Both serde's own wording and serde-saphyr's are understood:
//!
//! - serde-saphyr: ``unknown field `insecur`, expected one of host, insecure``
//! - serde:        ``unknown field `insecur`, expected one of `host`, `insecure` ``
//!   (also ``expected `host` `` and ``expected `host` or `insecure` ``, and
//!   ``there are no fields``)

/// The unknown key and the keys that were expected, read from an error message.
pub fn parse_unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.split_once("unknown field `")?.1;
    let (field, rest) = rest.split_once('`')?;
    let expected = rest.trim_start_matches(',').trim_start();
    let list = if let Some(l) = expected.strip_prefix("expected one of ") {
        l
    } else if let Some(l) = expected.strip_prefix("expected ") {
        l
    } else {
        // "there are no fields"
        return Some((field.to_owned(), Vec::new()));
    };
    // serde-saphyr appends " at line L, column C" in its location-less display.
    let list = match list.rfind(" at line ") {
        Some(i) => &list[..i],
        None => list,
    };
    let names = list
        .split(", ")
        .flat_map(|part| part.split(" or "))
        .map(|n| n.trim().trim_matches('`').to_owned())
        .filter(|n| !n.is_empty())
        .collect();
    Some((field.to_owned(), names))
}

/// The expected key closest to `field`, when one is close enough to be a typo.
pub fn did_you_mean<'a>(field: &str, expected: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let squash =
        |s: &str| s.chars().filter(|c| *c != '_' && *c != '-').flat_map(char::to_lowercase).collect::<String>();
    let field_squashed = squash(field);
    let mut best: Option<(usize, &str)> = None;
    for candidate in expected {
        // `ca_file`, `CAFile`, `ca-file` all mean `caFile`.
        if squash(candidate) == field_squashed {
            return Some(candidate);
        }
        let d = edit_distance(&field.to_lowercase(), &candidate.to_lowercase());
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, candidate));
        }
    }
    let (d, candidate) = best?;
    // A third of the longer name, at least one edit: `insecur` -> `insecure`,
    // `regstries` -> `registries`, but not `name` -> `images`.
    let limit = (field.chars().count().max(candidate.chars().count()) / 3).max(1);
    (d <= limit).then_some(candidate)
}

/// Optimal string alignment distance (Levenshtein plus adjacent swaps).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev2 = vec![0usize; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0usize; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                cur[j] = cur[j].min(prev2[j - 2] + 1);
            }
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_wordings() {
        let (f, e) = parse_unknown_field("unknown field `insecur`, expected one of host, insecure").unwrap();
        assert_eq!(f, "insecur");
        assert_eq!(e, ["host", "insecure"]);
        let (f, e) =
            parse_unknown_field("unknown field `insecur`, expected one of host, insecure at line 4, column 5").unwrap();
        assert_eq!(f, "insecur");
        assert_eq!(e, ["host", "insecure"]);
        let (_, e) = parse_unknown_field("unknown field `x`, expected one of `host`, `insecure`, `caFile`").unwrap();
        assert_eq!(e, ["host", "insecure", "caFile"]);
        let (_, e) = parse_unknown_field("unknown field `x`, expected `host` or `insecure`").unwrap();
        assert_eq!(e, ["host", "insecure"]);
        let (_, e) = parse_unknown_field("unknown field `x`, expected `host`").unwrap();
        assert_eq!(e, ["host"]);
        let (_, e) = parse_unknown_field("unknown field `x`, there are no fields").unwrap();
        assert!(e.is_empty());
        assert!(parse_unknown_field("missing field `name`").is_none());
    }

    #[test]
    fn suggests_only_near_names() {
        let keys = ["host", "insecure", "caFile", "username", "passwordFile"];
        assert_eq!(did_you_mean("insecur", keys), Some("insecure"));
        assert_eq!(did_you_mean("ca_file", keys), Some("caFile"));
        assert_eq!(did_you_mean("user", keys), None);
        assert_eq!(did_you_mean("usernmae", keys), Some("username"));
        assert_eq!(did_you_mean("zzz", keys), None);
        assert_eq!(did_you_mean("hots", keys), Some("host"));
    }

    #[test]
    fn distance() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
