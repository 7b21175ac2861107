//! The keyword taxonomy that labels a cluster's domain from its service name, tool names and
//! descriptions. A label is the domain with the most keyword hits (service-name hits count
//! ten times: the service is the strongest signal); no hit gives `general`. `tdscale clusters build --domains FILE` overrides it
//! with a JSON object mapping services or cluster ids to domains.

/// Domains and their keywords.
pub const TAXONOMY: &[(&str, &[&str])] = &[
    (
        "travel",
        &[
            "travel",
            "flight",
            "airport",
            "booking",
            "hotel",
            "trip",
            "airline",
            "passport",
            "insurance",
        ],
    ),
    (
        "finance",
        &[
            "trading",
            "stock",
            "order",
            "portfolio",
            "account",
            "balance",
            "fund",
            "bank",
            "payment",
            "invoice",
            "currency",
            "price",
        ],
    ),
    (
        "files",
        &["file", "directory", "folder", "filesystem", "path", "disk"],
    ),
    (
        "messaging",
        &["message", "inbox", "contact", "chat", "email", "mail"],
    ),
    (
        "social",
        &["tweet", "post", "twitter", "follow", "comment", "social"],
    ),
    ("support", &["ticket", "support", "issue", "resolution"]),
    (
        "vehicle",
        &["vehicle", "car", "engine", "brake", "fuel", "tire", "door"],
    ),
    (
        "math",
        &[
            "math",
            "calculate",
            "sum",
            "mean",
            "logarithm",
            "square",
            "average",
        ],
    ),
    ("memory", &["memory", "archival", "recall", "core_memory"]),
    ("search", &["search", "web", "browse", "url"]),
    ("retail", &["product", "cart", "shop", "retail", "purchase"]),
    ("weather", &["weather", "forecast", "temperature"]),
    ("calendar", &["calendar", "event", "meeting", "schedule"]),
    (
        "code",
        &["repository", "github", "commit", "pull", "code", "python"],
    ),
];

/// The domain label of a cluster.
///
/// ```
/// use tdscale::clusters::taxonomy::domain_of;
/// assert_eq!(domain_of("travel_booking", &["book_flight", "Book a flight"]), "travel");
/// assert_eq!(domain_of("x", &["frobnicate"]), "general");
/// ```
pub fn domain_of(service: &str, texts: &[&str]) -> String {
    let service = service.to_lowercase();
    // Distinct words, sorted, with their counts: a keyword's hits (the word itself and longer
    // words starting with it) are one contiguous range.
    let mut counts: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for t in texts {
        for w in t.to_lowercase().split(|c: char| !c.is_alphanumeric()) {
            if !w.is_empty() {
                *counts.entry(w.to_string()).or_default() += 1;
            }
        }
    }
    let mut best = ("general", 0usize);
    for (domain, keys) in TAXONOMY {
        let score: usize = keys
            .iter()
            .map(|k| {
                10 * usize::from(service.contains(k))
                    + counts
                        .range::<str, _>((
                            std::ops::Bound::Included(*k),
                            std::ops::Bound::Unbounded,
                        ))
                        .take_while(|(w, _)| w.starts_with(k))
                        .map(|(_, n)| n)
                        .sum::<usize>()
            })
            .sum();
        if score > best.1 {
            best = (domain, score);
        }
    }
    best.0.to_string()
}
