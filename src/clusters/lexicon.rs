//! The words of tool catalogs: splitting names (`getOrderDetails`, `asana_get_tasks_for_project`),
//! singular forms, the verbs that create, find or read things, the words that make a field an
//! identifier (`_id`, `Key`, `slug`, `sha`…), roles (`parent_`, `source_`), and the noun phrase
//! an identifier belongs to. Everything here is plain English and API naming habit; nothing is
//! specific to one server.

/// The kind of value an identifier field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdKind {
    Id,
    Key,
    Slug,
    Number,
    Sha,
    Ts,
    Uri,
    Url,
    Path,
    Name,
}

impl IdKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IdKind::Id => "id",
            IdKind::Key => "key",
            IdKind::Slug => "slug",
            IdKind::Number => "number",
            IdKind::Sha => "sha",
            IdKind::Ts => "ts",
            IdKind::Uri => "uri",
            IdKind::Url => "url",
            IdKind::Path => "path",
            IdKind::Name => "name",
        }
    }

    /// `name`, `number`, `path` and `url` name a thing only with a known entity in front of
    /// them (`table_name`, `pull_number`); alone they are ordinary words.
    pub fn is_weak(self) -> bool {
        matches!(
            self,
            IdKind::Name | IdKind::Number | IdKind::Path | IdKind::Url
        )
    }

    /// Values a caller may choose for a new thing: its name, path or key.
    pub fn is_chosen(self) -> bool {
        matches!(self, IdKind::Name | IdKind::Path | IdKind::Key)
    }
}

/// The identifier kind a (singular) word names, if any.
pub fn id_kind(word: &str) -> Option<IdKind> {
    Some(match word {
        "id" | "gid" | "uuid" | "identifier" | "iid" => IdKind::Id,
        "key" => IdKind::Key,
        "slug" => IdKind::Slug,
        "number" => IdKind::Number,
        "sha" | "hash" => IdKind::Sha,
        "ts" | "timestamp" => IdKind::Ts,
        "uri" => IdKind::Uri,
        "url" => IdKind::Url,
        "path" => IdKind::Path,
        "name" => IdKind::Name,
        _ => return None,
    })
}

/// What a tool's verb does to its object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerbClass {
    /// Creates the object and returns its new identifier (`create_issue`, `add-tasks`).
    Produce,
    /// Creates the object under a name the caller chose (`write_file`, `set`).
    Named,
    /// Lists or searches: returns identifiers of existing objects.
    Find,
    /// Reads one object (or, with a plural object, several).
    Get,
    /// Changes, deletes or acts on what it is given.
    Other,
}

/// Verbs in their base form and what they do.
const VERBS: &[(&str, VerbClass)] = {
    use VerbClass::*;
    &[
        ("create", Produce),
        ("add", Produce),
        ("post", Produce),
        ("insert", Produce),
        ("new", Produce),
        ("upload", Produce),
        ("fork", Produce),
        ("copy", Produce),
        ("make", Produce),
        ("register", Produce),
        ("book", Produce),
        ("place", Produce),
        ("generate", Produce),
        ("duplicate", Produce),
        ("clone", Produce),
        ("submit", Produce),
        ("append", Produce),
        ("commit", Produce),
        ("open", Produce),
        ("write", Named),
        ("set", Named),
        ("put", Named),
        ("save", Named),
        ("store", Named),
        ("list", Find),
        ("search", Find),
        ("find", Find),
        ("query", Find),
        ("browse", Find),
        ("lookup", Find),
        ("discover", Find),
        ("explore", Find),
        ("scan", Find),
        ("get", Get),
        ("fetch", Get),
        ("retrieve", Get),
        ("read", Get),
        ("describe", Get),
        ("show", Get),
        ("view", Get),
        ("download", Get),
        ("inspect", Get),
        ("give", Get),
        ("return", Get),
        ("load", Get),
        ("update", Other),
        ("edit", Other),
        ("patch", Other),
        ("change", Other),
        ("rename", Other),
        ("move", Other),
        ("delete", Other),
        ("remove", Other),
        ("cancel", Other),
        ("close", Other),
        ("complete", Other),
        ("finalize", Other),
        ("merge", Other),
        ("assign", Other),
        ("transition", Other),
        ("link", Other),
        ("reply", Other),
        ("archive", Other),
        ("checkout", Other),
        ("reset", Other),
        ("push", Other),
        ("evaluate", Other),
        ("navigate", Other),
        ("click", Other),
        ("fill", Other),
        ("select", Other),
        ("hover", Other),
        ("analyze", Other),
        ("mark", Other),
        ("stage", Other),
        ("apply", Other),
        ("run", Other),
        ("send", Other),
        ("switch", Other),
        ("refund", Other),
        ("replace", Other),
        ("record", Other),
        ("turn", Other),
        ("compute", Other),
        ("summarise", Other),
        ("summarize", Other),
        ("control", Other),
        ("manage", Other),
        ("answer", Other),
        ("tell", Other),
        ("capture", Other),
        ("type", Other),
        ("choose", Other),
        ("resolve", Other),
        ("unstage", Other),
    ]
};

/// A verb in its base form, as the static word of the verb table.
pub fn base_verb(word: &str) -> Option<&'static str> {
    VERBS.iter().find(|(v, _)| *v == word).map(|(v, _)| *v)
}

/// The class of a verb in its base form.
pub fn verb_class(word: &str) -> Option<VerbClass> {
    VERBS.iter().find(|(v, _)| *v == word).map(|(_, c)| *c)
}

/// The base form of a verb as a description writes it: `Lists` → `list`, `Searches` →
/// `search`, `Queries` → `query`.
pub fn as_verb(token: &str) -> Option<&'static str> {
    let cut = |n: usize| {
        token
            .get(..token.len().saturating_sub(n))
            .filter(|c| !c.is_empty())
    };
    [Some(token), cut(1), cut(2)]
        .into_iter()
        .flatten()
        .find_map(base_verb)
        .or_else(|| {
            let stem = token.strip_suffix("ies")?;
            base_verb(&format!("{stem}y"))
        })
}

/// Whether a word is in a list.
fn is_in(list: &[&str], word: &str) -> bool {
    list.contains(&word)
}

/// Role prefixes: `parent_id`, `source_page_id`, `target_branch` take an identifier of the
/// thing named after the role.
pub fn is_role(word: &str) -> bool {
    is_in(
        &[
            "parent",
            "source",
            "target",
            "destination",
            "from",
            "to",
            "inward",
            "outward",
            "base",
            "head",
            "new",
            "old",
            "original",
            "expected",
            "previous",
            "current",
            "root",
            "related",
            "other",
            "start",
            "end",
            "main",
        ],
        word,
    )
}

/// Words for people: they all name a user.
pub fn is_person(word: &str) -> bool {
    is_in(
        &[
            "assignee", "author", "owner", "creator", "reporter", "watcher", "member", "follower",
            "login", "assigned",
        ],
        word,
    )
}

/// Words that narrow a noun without changing what it is (`my_tasks`, `assignable_users`).
pub fn is_modifier(word: &str) -> bool {
    is_in(
        &[
            "my",
            "all",
            "multiple",
            "assignable",
            "recent",
            "open",
            "existing",
            "allowed",
            "completed",
            "latest",
            "single",
            "public",
            "many",
            "several",
            "bulk",
            "batch",
        ],
        word,
    )
}

/// Heads naming an aspect of one thing: `issue_details` is about one issue.
pub fn is_aspect_head(word: &str) -> bool {
    is_in(
        &[
            "detail", "info", "profile", "content", "markdown", "history", "diff", "metadata",
        ],
        word,
    )
}

/// Heads naming other things under one: `block_children`, `page_tree` are blocks and pages.
pub fn is_collection_head(word: &str) -> bool {
    is_in(&["child", "tree", "hierarchy", "list", "overview"], word)
}

/// Prepositions of tool names (`get_tasks_for_project`).
pub fn is_preposition(word: &str) -> bool {
    is_in(
        &[
            "for", "from", "to", "by", "in", "on", "of", "with", "into", "under", "at", "as",
            "per", "via",
        ],
        word,
    )
}

/// Further prepositions of descriptions (`code across repositories`).
pub fn is_description_preposition(word: &str) -> bool {
    is_preposition(word)
        || is_in(
            &[
                "across", "between", "within", "through", "over", "among", "inside", "about",
                "after", "before", "around", "without", "like", "than", "since", "until",
            ],
            word,
        )
}

pub fn is_article(word: &str) -> bool {
    is_in(&["a", "an", "the", "one"], word)
}

/// Adjectives in front of an identifier word (`short ID`, `full path`).
pub fn is_adjective(word: &str) -> bool {
    is_in(
        &[
            "short", "long", "full", "numeric", "unique", "internal", "external", "global",
            "local", "optional", "public", "private", "existing",
        ],
        word,
    )
}

/// Function words of descriptions that end or skip a noun phrase.
pub fn is_stop(word: &str) -> bool {
    is_in(
        &[
            "the",
            "its",
            "their",
            "with",
            "and",
            "or",
            "each",
            "new",
            "a",
            "an",
            "of",
            "returns",
            "return",
            "by",
            "for",
            "in",
            "on",
            "to",
            "from",
            "one",
            "more",
            "your",
            "you",
            "this",
            "that",
            "all",
            "any",
            "up",
            "as",
            "'s",
            "it",
            "them",
            "is",
            "are",
            "be",
            "given",
            "if",
            "at",
            "into",
            "under",
            "per",
            "only",
            "optionally",
            "matching",
            "whose",
            "which",
        ],
        word,
    )
}

/// Abbreviations spelled out.
fn spelled_out(word: &str) -> &str {
    match word {
        "repo" => "repository",
        "org" => "organization",
        "pr" => "pull_request",
        "dir" => "directory",
        "msg" => "message",
        "doc" => "documentation",
        "db" => "database",
        "timestamp" => "ts",
        w => w,
    }
}

/// The singular of an English word (`entries` → `entry`, `statuses` → `status`, `houses` →
/// `house`, `ids` → `id`).
pub fn singular(w: &str) -> String {
    const KEEP: &[(&str, &str)] = &[
        ("children", "child"),
        ("ids", "id"),
        ("gids", "gid"),
        ("people", "person"),
    ];
    if let Some((_, s)) = KEEP.iter().find(|(p, _)| *p == w) {
        return s.to_string();
    }
    const INVARIANT: &[&str] = &[
        "data", "media", "ts", "status", "alias", "analysis", "address", "process", "access",
        "class", "its", "this", "has", "was", "is", "as", "us", "yes", "always", "series",
    ];
    if INVARIANT.contains(&w) {
        return w.to_string();
    }
    if w.len() > 4
        && let Some(stem) = w.strip_suffix("ies")
    {
        return format!("{stem}y");
    }
    // `statuses`, `campuses` lose `es`; `houses`, `causes` only `s`
    if let Some(stem) = w.strip_suffix("uses")
        && stem.len() > 1
        && !stem.ends_with(['a', 'e', 'i', 'o', 'u'])
    {
        return format!("{stem}us");
    }
    // `quizzes` → `quiz`, but `sizes` → `size`
    if let Some(stem) = w.strip_suffix("zzes") {
        return format!("{stem}z");
    }
    for suffix in ["sses", "xes", "ches", "shes"] {
        if w.ends_with(suffix) && w.len() > suffix.len() + 1 {
            return w[..w.len() - 2].to_string();
        }
    }
    if w.ends_with("ss") || w.ends_with("us") || w.ends_with("is") {
        return w.to_string();
    }
    if w.len() > 3
        && let Some(stem) = w.strip_suffix('s')
    {
        return stem.to_string();
    }
    w.to_string()
}

pub fn is_plural(w: &str) -> bool {
    singular(w) != w
}

/// The words of a name, lower case: `getOrderDetails` → `get order details`,
/// `API-retrieve-a-page` → `api retrieve a page`, `URLPath` → `url path`.
pub fn split_words(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut out = vec![];
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let boundary = c.is_uppercase()
            && i > 0
            && (chars[i - 1].is_lowercase()
                || chars[i - 1].is_ascii_digit()
                || (chars[i - 1].is_uppercase()
                    && chars.get(i + 1).is_some_and(|n| n.is_lowercase())));
        if !c.is_alphanumeric() || boundary {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            if !c.is_alphanumeric() {
                continue;
            }
        }
        cur.extend(c.to_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The singular words of a name with abbreviations spelled out (`repo_ids` → `repository id`).
pub fn words(name: &str) -> Vec<String> {
    split_words(name)
        .iter()
        .flat_map(|w| {
            spelled_out(&singular(w))
                .split('_')
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The entity a noun phrase names, as one snake-case word: articles and modifiers dropped,
/// aspect and collection heads dropped (`issue_details` → `issue`, `block_children` → `block`),
/// `subtask` → `task`, any word for a person → `user`.
pub fn canon<S: AsRef<str>>(phrase: &[S]) -> String {
    let mut ws: Vec<&str> = phrase
        .iter()
        .map(AsRef::as_ref)
        .filter(|w| !is_article(w))
        .collect();
    while ws.len() > 1 && is_modifier(ws[0]) {
        ws.remove(0);
    }
    while ws.len() > 1 && (is_aspect_head(ws[ws.len() - 1]) || is_collection_head(ws[ws.len() - 1]))
    {
        ws.pop();
    }
    if ws.len() == 1 {
        let w = ws[0];
        if let Some(rest) = w.strip_prefix("sub")
            && w.len() > 5
        {
            return rest.to_string();
        }
        if is_person(w) {
            return "user".into();
        }
    }
    ws.join("_")
}

/// Pagination controls: a cursor belongs to the list call that returned it, so it never links
/// two tools.
pub fn is_paging<S: AsRef<str>>(ws: &[S]) -> bool {
    let ws: Vec<&str> = ws.iter().map(AsRef::as_ref).collect();
    let Some(&first) = ws.first() else {
        return false;
    };
    let last = ws[ws.len() - 1];
    // `page_token`, `next_token` page; an `access_token` is a credential that flows
    let paging_token = ws.contains(&"token")
        && (ws.len() == 1
            || ws
                .iter()
                .any(|w| matches!(*w, "page" | "next" | "continuation" | "sync")));
    ws.iter()
        .any(|w| matches!(*w, "cursor" | "offset" | "next"))
        || paging_token
        || ws == ["page"]
        || ws.contains(&"per")
        || (first == "page" && matches!(last, "size" | "number" | "count"))
        || ws == ["start"]
        || ws.starts_with(&["start", "at"])
}

/// The tokens of a description: lower-case words, and the marks that end a clause (`.`, `;`,
/// `:`, `(`, `)`, `|`). A possessive `'s` is its own token.
pub fn tokens(text: &str) -> Vec<String> {
    let mut out = vec![];
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_alphabetic() {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(text[start..i].to_ascii_lowercase());
            if b[i..].starts_with(b"'s") {
                out.push("'s".into());
                i += 2;
            }
        } else {
            if matches!(c, b'.' | b';' | b':' | b'(' | b')' | b'|') {
                out.push((c as char).to_string());
            }
            i += 1;
        }
    }
    out
}

/// Whether a token ends a clause (a closing parenthesis does not: "comments (with ids)").
pub fn ends_clause(t: &str) -> bool {
    matches!(t, "." | ";" | ":" | "(" | "|")
}
