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
    let words: Vec<String> = texts
        .iter()
        .flat_map(|t| {
            t.to_lowercase()
                .split(|c: char| !c.is_alphanumeric())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|w| !w.is_empty())
        .collect();
    let mut best = ("general", 0usize);
    for (domain, keys) in TAXONOMY {
        let score: usize = keys
            .iter()
            .map(|k| {
                10 * usize::from(service.contains(k))
                    + words
                        .iter()
                        .filter(|w| w.as_str() == *k || (w.len() > k.len() && w.starts_with(k)))
                        .count()
            })
            .sum();
        if score > best.1 {
            best = (domain, score);
        }
    }
    best.0.to_string()
}
