//! Dependency edges between the tools of one service from what their catalog says: which
//! entities a tool returns the identifiers of, and which of its parameters take an identifier.
//!
//! A tool **returns** identifiers of
//! - its object, by its name and verb (*entity ids*): `create_issue` creates an issue,
//!   `list_bases` / `find_projects` / `get_tasks_for_project` return existing ones, `write_file`
//!   creates a file under a name the caller chose; a read of the very thing it was given
//!   (`get_issue(issue_number)`, `get_multiple_tasks_by_gid(task_ids)`) returns nothing new,
//!   and `add_tag_to_task` attaches rather than creates;
//! - what its description says it returns (*description*), identifier-like only: "Returns
//!   project keys", "with their GIDs", "event and issue IDs", "the ids of its data sources",
//!   `place_id` — never an identifier of something the tool itself takes as input;
//! - the identifier fields of its output schema (*output schema*): `bases[].id`, `comment.author.id`.
//!
//! A parameter **takes** an identifier when its name ends in an identifier word (`task_id`,
//! `issueKey`, `projectSlug`, `pull_number`, `thread_ts`, `table_name`) or its description says so
//! (`customer`: "ID of the customer"; `workspace`: "Workspace GID"); the entity is the noun in
//! front, with roles dropped (`parent_task_id` takes a task, `source_page_id` a page), the nested
//! object for a bare `id` (`tasks[].id` takes a task), the tool's own object otherwise. Paging
//! controls (`cursor`, `page`, `offset`) never link tools, and the name of what a tool creates
//! (`create_table(name)`) is new: nothing upstream feeds it.
//!
//! An edge A → B exists when A returns identifiers of an entity one of B's parameters takes.
//! Sharing a parameter name is never evidence: `limit`, `query` or `owner` taken by two tools
//! say nothing about one feeding the other.

use std::collections::HashSet;

use super::fields::Field;
use super::lexicon::{
    IdKind, VerbClass, as_verb, base_verb, canon, ends_clause, id_kind, is_adjective, is_article,
    is_aspect_head, is_collection_head, is_description_preposition, is_paging, is_person,
    is_plural, is_preposition, is_role, is_stop, singular, split_words, tokens, verb_class, words,
};

/// A tool as the edge finder sees it.
#[derive(Debug, Clone, Default)]
pub struct ToolShape {
    pub tool_id: String,
    pub name: String,
    pub description: String,
    /// Fields of the input schema.
    pub inputs: Vec<Field>,
    /// Fields of the output schema (empty when the catalog has none).
    pub outputs: Vec<Field>,
}

/// Kinds of evidence, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EvidenceKind {
    /// A value A returned was an argument of a later B call in the corpus's trajectories.
    ObservedFlow,
    /// An identifier field of A's output schema is the entity B's parameter takes.
    OutputSchema,
    /// A creates, lists or finds the entity B's parameter takes (by their names).
    EntityId,
    /// A's description says it returns identifiers of that entity.
    Description,
}

impl EvidenceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EvidenceKind::ObservedFlow => "observed_flow",
            EvidenceKind::OutputSchema => "output_schema",
            EvidenceKind::EntityId => "entity_id",
            EvidenceKind::Description => "description",
        }
    }
}

/// How A comes to hold the identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum How {
    /// A created the entity.
    Produced,
    /// A created it under a name its caller chose and returns it.
    CreatedName,
    /// A listed, searched or read it.
    Found,
    /// A's description or output names it inside what A returns.
    Carried,
}

impl How {
    fn verb(self) -> &'static str {
        match self {
            How::Produced => "creates",
            How::CreatedName => "creates (under the caller's name)",
            How::Found => "returns",
            How::Carried => "returns",
        }
    }
}

/// A found edge.
#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    pub from: usize,
    pub to: usize,
    /// The top-level input parameter of `to` that receives the value.
    pub field: String,
    /// Where inside it (`tasks[].projectId`), the same as `field` for a top-level one.
    pub path: String,
    pub kind: EvidenceKind,
    /// The entity the value identifies.
    pub entity: String,
    /// What supports it, in words.
    pub evidence: String,
    pub score: f64,
    /// For an observed flow: in how many trajectories it was seen.
    pub trajectories: Option<u64>,
}

/// Normalises a field name: lower case, camelCase split, separators dropped, plural `s` of each
/// word removed (`OrderIDs` → `order_id`).
pub fn normalize(name: &str) -> String {
    words(name).join("_")
}

/// What one identifier of a tool's result is.
#[derive(Debug, Clone, PartialEq)]
struct Yield {
    entity: String,
    kind: IdKind,
    how: How,
    evidence: EvidenceKind,
    /// The output field or description words it comes from.
    source: String,
}

/// A parameter that takes an identifier.
#[derive(Debug, Clone)]
struct Slot {
    field: usize,
    entities: Vec<String>,
    kind: IdKind,
    /// Qualified by a role (`parent_task_id`): it names another thing than the tool's object.
    role: bool,
}

/// What a tool's name and description say it does.
#[derive(Debug, Clone, Default)]
struct Shape {
    verb: Option<&'static str>,
    /// The verb came from the name (not from the description).
    name_verb: bool,
    obj_words: Vec<String>,
    scope_words: Vec<String>,
    prep: Option<String>,
    plural: bool,
    toks: Vec<String>,
    desc_objects: Vec<String>,
    obj: Option<String>,
    many: bool,
    same_head: bool,
    attach: bool,
}

impl Shape {
    fn class(&self) -> Option<VerbClass> {
        self.verb.and_then(verb_class)
    }
}

/// The name's leading word, when every tool of the service starts with it (`asana_`, `API-`).
fn common_prefix(tools: &[ToolShape]) -> usize {
    let ws: Vec<Vec<String>> = tools.iter().map(|t| split_words(&t.name)).collect();
    let firsts: HashSet<&str> = ws
        .iter()
        .filter_map(|w| w.first().map(String::as_str))
        .collect();
    usize::from(tools.len() >= 2 && ws.iter().all(|w| w.len() >= 2) && firsts.len() == 1)
}

fn spelled(w: &str) -> String {
    words(w).join("_")
}

fn shape(tool: &ToolShape, strip: usize) -> Shape {
    let mut sh = Shape::default();
    let raw_all = split_words(&tool.name);
    let mut raw: Vec<String> = raw_all.into_iter().skip(strip).collect();
    let mut ws: Vec<String> = raw.iter().map(|w| singular(w)).collect();
    let mut verb = None;
    if let Some(v) = ws.first().and_then(|w| base_verb(w)) {
        verb = Some(v);
        ws.remove(0);
        raw.remove(0);
        // `create_or_update_file`: the first verb decides
        while ws.len() >= 2 && (ws[0] == "or" || ws[0] == "and") && verb_class(&ws[1]).is_some() {
            ws.drain(..2);
            raw.drain(..2);
        }
    }
    // `post_search`: the object is itself the verb
    if ws.len() == 1 && verb_class(&ws[0]) == Some(VerbClass::Find) {
        verb = base_verb(&ws[0]);
        ws.clear();
        raw.clear();
    }
    let mut in_scope = false;
    for (w, r) in ws.iter().zip(&raw) {
        if is_preposition(w) {
            if sh.prep.is_none() {
                sh.prep = Some(w.clone());
            }
            in_scope = true;
            continue;
        }
        if is_article(w) {
            continue;
        }
        if in_scope {
            sh.scope_words.push(spelled(w));
        } else {
            sh.obj_words.push(spelled(w));
            sh.plural = r != w;
        }
    }
    sh.obj_words = split_joined(&sh.obj_words);
    sh.scope_words = split_joined(&sh.scope_words);
    let mut toks = tokens(&tool.description);
    // "Notion | Gets one user": a label in front of the description
    if let Some(k) = toks.iter().take(3).position(|t| t == "|") {
        toks.drain(..=k);
    }
    let dverb = toks.first().and_then(|t| as_verb(t));
    sh.name_verb = verb.is_some();
    sh.verb = verb.or(dverb);
    sh.toks = toks;
    sh
}

fn split_joined(ws: &[String]) -> Vec<String> {
    if ws.is_empty() {
        return vec![];
    }
    ws.join("_").split('_').map(str::to_string).collect()
}

/// Plural noun phrases from `start` to the end of the clause (`pages and data sources`), each
/// as the known entity it names or as its singular.
fn noun_phrases(
    toks: &[String],
    start: usize,
    known: &HashSet<String>,
    limit: usize,
) -> Vec<String> {
    let mut out = vec![];
    let mut run: Vec<&str> = vec![];
    let mut seen = false;
    let mut i = start;
    while i < toks.len() && i < start + limit {
        let t = toks[i].as_str();
        if ends_clause(t) {
            break;
        }
        if t == "and" || t == "or" {
            run.clear();
            i += 1;
            continue;
        }
        if is_description_preposition(t) {
            // `code across repositories`: a preposition ends the object
            if !out.is_empty() || seen {
                break;
            }
            run.clear();
            i += 1;
            continue;
        }
        let verbish = as_verb(t).is_some()
            && !known.contains(t)
            && !known.contains(&singular(t))
            && !is_plural(t);
        if is_stop(t) || verbish {
            if !out.is_empty() {
                break;
            }
            run.clear();
            i += 1;
            continue;
        }
        seen = true;
        run.push(t);
        if is_plural(t) && id_kind(&singular(t)).is_none() {
            let tail: Vec<String> = run[run.len().saturating_sub(2)..]
                .iter()
                .map(|w| singular(w))
                .collect();
            let joined = tail.join("_");
            out.push(if known.contains(&joined) {
                joined
            } else {
                singular(t)
            });
            run.clear();
        }
        i += 1;
    }
    out
}

/// A noun phrase as a known entity: its longest known suffix.
fn resolve<S: AsRef<str>>(phrase: &[S], known: &HashSet<String>) -> Option<String> {
    let e = canon(phrase);
    let parts: Vec<&str> = e.split('_').collect();
    (0..parts.len())
        .map(|i| parts[i..].join("_"))
        .find(|c| known.contains(c))
}

/// (entities, kind) from a parameter description: `Workspace GID`, `ID of the customer`,
/// `Block or page ID`.
fn id_in_text(text: &str, known: &HashSet<String>) -> Option<(Vec<String>, IdKind)> {
    let toks: Vec<String> = tokens(text).into_iter().filter(|t| t != "'s").collect();
    for (i, t) in toks.iter().enumerate() {
        let w = singular(t);
        let Some(kind) = id_kind(&w) else { continue };
        if kind == IdKind::Number || (matches!(w.as_str(), "name" | "path") && i > 2) {
            continue;
        }
        let mut ents: Vec<String> = vec![];
        let mut j = i as isize - 1;
        while j >= 0 {
            let s = singular(&toks[j as usize]);
            if s == "or" || s == "and" || is_adjective(&s) {
                j -= 1;
                continue;
            }
            if j >= 1 {
                let pair = format!("{}_{s}", singular(&toks[j as usize - 1]));
                if known.contains(&pair) {
                    ents.push(pair);
                    j -= 2;
                    continue;
                }
            }
            let r = if is_role(&s) {
                None
            } else {
                resolve(&[&s], known)
            };
            if let Some(r) = r {
                ents.push(r);
            } else if is_person(&s) {
                ents.push("user".into());
            } else if !is_role(&s) {
                break;
            }
            j -= 1;
        }
        if ents.is_empty() && i + 2 < toks.len() && toks[i + 1] == "of" {
            ents = noun_phrases(&toks, i + 2, known, 4)
                .into_iter()
                .filter(|e| known.contains(e))
                .collect();
            if ents.is_empty() {
                let k = (i + 2..toks.len())
                    .find(|&k| !is_article(&toks[k]))
                    .unwrap_or(toks.len());
                if k < toks.len()
                    && let Some(r) = resolve(&[singular(&toks[k])], known)
                {
                    ents = vec![r];
                }
            }
        }
        return Some((ents, kind));
    }
    None
}

/// (entity, kind, words) of identifiers a description says a tool returns: `project keys`,
/// `event and issue IDs`, `the ids of its data sources`, `with their ids` (of its own objects),
/// `place_id`.
fn id_refs(
    toks: &[String],
    objects: &[String],
    known: &HashSet<String>,
) -> Vec<(String, IdKind, String)> {
    let mut out: Vec<(String, IdKind, String)> = vec![];
    let push = |e: String, k: IdKind, src: String, out: &mut Vec<(String, IdKind, String)>| {
        if !e.is_empty() && !out.iter().any(|(x, y, _)| *x == e && *y == k) {
            out.push((e, k, src));
        }
    };
    for (i, t) in toks.iter().enumerate() {
        if t.contains('_') {
            let ws: Vec<&str> = t.split('_').collect();
            if let Some(kind) = id_kind(ws[ws.len() - 1])
                && !is_paging(&ws)
            {
                let ent: Vec<&str> = ws[..ws.len() - 1]
                    .iter()
                    .copied()
                    .filter(|w| !is_role(w))
                    .collect();
                if !ent.is_empty() {
                    push(canon(&ent), kind, t.clone(), &mut out);
                }
            }
            continue;
        }
        let w = singular(t);
        let Some(kind) = id_kind(&w) else { continue };
        if kind == IdKind::Name {
            continue;
        }
        let mut ents: Vec<String> = vec![];
        let mut j = i as isize - 1;
        while j >= 0 && !ends_clause(&toks[j as usize]) {
            let s = singular(&toks[j as usize]);
            if known.contains(&s) || is_person(&s) {
                // `data source ids`: the longest known phrase ending here
                if j >= 1 {
                    let pair = format!("{}_{s}", singular(&toks[j as usize - 1]));
                    if known.contains(&pair) {
                        ents.push(pair);
                        j -= 2;
                        continue;
                    }
                }
                ents.push(canon(&[&s]));
            } else if !matches!(
                toks[j as usize].as_str(),
                "and" | "short" | "latest" | "author" | "'s" | "new"
            ) {
                break;
            }
            j -= 1;
        }
        if ents.is_empty() && toks.get(i + 1).is_some_and(|n| n == "of") {
            ents = noun_phrases(toks, i + 2, known, 5)
                .into_iter()
                .filter(|e| known.contains(e))
                .collect();
        }
        if ents.is_empty() {
            ents = objects.to_vec();
        }
        for e in ents {
            push(e, kind, t.clone(), &mut out);
        }
    }
    out
}

/// The shapes of a service's tools and the entities the service knows of.
fn analyse(tools: &[ToolShape]) -> (Vec<Shape>, HashSet<String>) {
    let strip = common_prefix(tools);
    let mut shapes: Vec<Shape> = tools.iter().map(|t| shape(t, strip)).collect();
    let mut known: HashSet<String> = HashSet::new();
    for sh in &shapes {
        if !sh.obj_words.is_empty() {
            known.insert(canon(&sh.obj_words));
        }
        if !sh.scope_words.is_empty() {
            known.insert(canon(&sh.scope_words));
        }
    }
    for t in tools {
        for f in &t.outputs {
            if f.has_type("object") || f.has_type("array") {
                known.insert(canon(&words(&f.name)));
            }
        }
        for f in &t.inputs {
            let ws = words(&f.name);
            if ws.len() >= 2
                && let Some(kind) = id_kind(&ws[ws.len() - 1])
                && !kind.is_weak()
                && !is_paging(&ws)
            {
                let ent: Vec<&String> = ws[..ws.len() - 1].iter().filter(|w| !is_role(w)).collect();
                if !ent.is_empty() {
                    known.insert(canon(&ent));
                }
            }
        }
    }
    // "Commit SHA the branches must contain": the noun in front of an identifier word.
    for t in tools {
        for f in &t.inputs {
            let toks: Vec<String> = tokens(&f.description)
                .into_iter()
                .filter(|x| x != "'s")
                .collect();
            for i in 1..toks.len() {
                let prev = &toks[i - 1];
                if id_kind(&singular(&toks[i])).is_some_and(|k| !k.is_weak())
                    && !is_stop(prev)
                    && !is_adjective(prev)
                    && !ends_clause(prev)
                    && !is_role(&singular(prev))
                {
                    known.insert(canon(&[singular(prev)]));
                }
            }
        }
    }
    known.remove("");
    for sh in &mut shapes {
        // Objects the description names: after its verb, and after `Returns`.
        let mut dobj: Vec<String> = vec![];
        if sh.toks.first().is_some_and(|t| as_verb(t).is_some()) {
            dobj.extend(noun_phrases(&sh.toks, 1, &known, 12));
        }
        for k in 1..sh.toks.len() {
            if sh.toks[k] == "returns" || sh.toks[k] == "return" {
                dobj.extend(noun_phrases(&sh.toks, k + 1, &known, 6));
            }
        }
        let mut seen = HashSet::new();
        sh.desc_objects = dobj
            .into_iter()
            .filter(|e| id_kind(e).is_none() && seen.insert(e.clone()))
            .collect();
        let last_is_collection = sh.obj_words.last().is_some_and(|w| is_collection_head(w));
        if !sh.obj_words.is_empty()
            && !sh.name_verb
            && !sh.desc_objects.is_empty()
            && !sh.desc_objects.contains(&canon(&sh.obj_words))
            && !last_is_collection
        {
            // `git_log`: "Lists recent commits"
            sh.obj_words = sh.desc_objects[0].split('_').map(str::to_string).collect();
            sh.plural = true;
        }
        if let Some(head) = sh.obj_words.last().cloned() {
            let o = canon(&sh.obj_words);
            sh.many = is_collection_head(&head) || (sh.plural && !is_aspect_head(&head));
            sh.same_head = o.rsplit('_').next() == Some(head.as_str());
            sh.obj = Some(o);
        } else {
            sh.obj = sh.desc_objects.first().cloned();
            sh.many = !sh.desc_objects.is_empty();
            sh.same_head = true;
        }
        // `add_tag_to_task`, `add_watcher`: attaches something that exists
        sh.attach = sh.class() == Some(VerbClass::Produce)
            && (matches!(sh.prep.as_deref(), Some("to" | "into" | "on"))
                || sh.obj.as_deref() == Some("user"));
    }
    (shapes, known)
}

/// The identifier parameters of a tool.
fn slots(tool: &ToolShape, sh: &Shape, known: &HashSet<String>) -> Vec<Slot> {
    let mut out = vec![];
    for (fi, f) in tool.inputs.iter().enumerate() {
        if !f.can_hold_identifier() {
            continue;
        }
        let ws = words(&f.name);
        if ws.is_empty() || is_paging(&ws) {
            continue;
        }
        let named_kind = id_kind(&ws[ws.len() - 1]);
        let mut ent: Vec<String> = if named_kind.is_some() {
            ws[..ws.len() - 1].to_vec()
        } else {
            ws.clone()
        };
        let mut role = false;
        while !ent.is_empty() && is_role(&ent[0]) && !(ent.len() == 1 && is_person(&ent[0])) {
            ent.remove(0);
            role = true;
        }
        let (entities, kind) = match named_kind {
            None => {
                // a bare name (`customer`, `workspace`, `repo`) takes an identifier when its
                // description says so
                let Some((dents, kind)) = id_in_text(&f.description, known) else {
                    continue;
                };
                let ents = if !ent.is_empty() {
                    let c = canon(&ent);
                    match resolve(&ent, known).or((c == "user").then_some(c)) {
                        Some(r) => vec![r],
                        None => dents,
                    }
                } else if !dents.is_empty() {
                    dents
                } else {
                    sh.obj.iter().cloned().collect()
                };
                (ents, kind)
            }
            Some(kind) if ent.is_empty() => {
                let described = id_in_text(&f.description, known)
                    .map(|d| d.0)
                    .unwrap_or_default();
                let ents = if !described.is_empty() {
                    described
                } else if kind == IdKind::Id && f.parent.is_none() && !f.sibling_kinds.is_empty() {
                    // `delete_object(type, id)`: an id of any kind the sibling enumerates
                    f.sibling_kinds.iter().map(|k| canon(&words(k))).collect()
                } else if let Some(p) = &f.parent {
                    vec![canon(&words(p))]
                } else if matches!(kind, IdKind::Path | IdKind::Url | IdKind::Uri) {
                    vec![kind.as_str().to_string()]
                } else if kind == IdKind::Name {
                    continue;
                } else {
                    sh.obj.iter().cloned().collect()
                };
                (ents, kind)
            }
            Some(kind) => {
                let mut r = resolve(&ent, known);
                // `block_id`: "Block or page ID" names both
                let described = id_in_text(&f.description, known)
                    .map(|d| d.0)
                    .unwrap_or_default();
                if r.is_none() && kind == IdKind::Number {
                    // `pull_number` for a `pull_request`
                    let prefix = format!("{}_", canon(&ent));
                    let mut longer: Vec<&String> =
                        known.iter().filter(|k| k.starts_with(&prefix)).collect();
                    longer.sort_by_key(|k| (k.len(), k.as_str()));
                    r = longer.first().map(|k| k.to_string());
                }
                let r = match r {
                    Some(r) => r,
                    None if kind.is_weak() => continue,
                    None => canon(&ent),
                };
                let mut ents = vec![r.clone()];
                ents.extend(described.into_iter().filter(|e| *e != r));
                (ents, kind)
            }
        };
        let entities: Vec<String> = entities.into_iter().filter(|e| !e.is_empty()).collect();
        if !entities.is_empty() {
            out.push(Slot {
                field: fi,
                entities,
                kind,
                role,
            });
        }
    }
    out
}

/// The identifiers a tool returns.
fn yields(tool: &ToolShape, sh: &Shape, own: &[Slot], known: &HashSet<String>) -> Vec<Yield> {
    let mut out = vec![];
    let taken: HashSet<&str> = own
        .iter()
        .flat_map(|s| s.entities.iter().map(String::as_str))
        .collect();
    // `find_tasks(parentId)` lists other tasks than the one it was given
    let given: HashSet<&str> = own
        .iter()
        .filter(|s| !s.role)
        .flat_map(|s| s.entities.iter().map(String::as_str))
        .collect();
    let class = sh.class();
    let y = |entity: &str, kind, how, evidence, source: String| Yield {
        entity: entity.to_string(),
        kind,
        how,
        evidence,
        source,
    };
    if let Some(o) = &sh.obj {
        let name = format!("its name `{}`", tool.name);
        match class {
            _ if sh.attach => {}
            Some(VerbClass::Produce) => out.push(y(
                o,
                IdKind::Id,
                How::Produced,
                EvidenceKind::EntityId,
                name,
            )),
            Some(VerbClass::Named) => out.push(y(
                o,
                IdKind::Name,
                How::CreatedName,
                EvidenceKind::EntityId,
                name,
            )),
            Some(VerbClass::Find) | Some(VerbClass::Get)
                if class == Some(VerbClass::Find) || sh.many =>
            {
                // a read of the things it was given, by their ids or paths
                let echo = sh.same_head
                    && (given.contains(o.as_str())
                        || (class == Some(VerbClass::Get) && given.contains("path")));
                if !echo {
                    out.push(y(o, IdKind::Id, How::Found, EvidenceKind::EntityId, name));
                } else {
                    // "Queries a data source's pages": what it lists is the possessed noun
                    for e in &sh.desc_objects {
                        if e != o && !taken.contains(e.as_str()) {
                            out.push(y(
                                e,
                                IdKind::Id,
                                How::Found,
                                EvidenceKind::Description,
                                format!("its description names {e}"),
                            ));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    // `Returns projects with id …`
    if matches!(class, Some(VerbClass::Find | VerbClass::Produce)) && !sh.attach {
        let how = if class == Some(VerbClass::Find) {
            How::Found
        } else {
            How::Produced
        };
        for e in &sh.desc_objects {
            if Some(e) != sh.obj.as_ref() && !taken.contains(e.as_str()) && known.contains(e) {
                out.push(y(
                    e,
                    IdKind::Id,
                    how,
                    EvidenceKind::Description,
                    format!("its description names {e}"),
                ));
            }
        }
    }
    let objects: Vec<String> = sh.obj.iter().chain(&sh.desc_objects).cloned().collect();
    for (e, kind, word) in id_refs(&sh.toks, &objects, known) {
        if taken.contains(e.as_str()) || id_kind(&e).is_some() {
            continue;
        }
        // "each result is labelled with its path": the path it was given
        if kind == IdKind::Path && given.contains("path") && class == Some(VerbClass::Get) {
            continue;
        }
        out.push(y(
            &e,
            kind,
            How::Carried,
            EvidenceKind::Description,
            format!("its description says it returns `{word}`"),
        ));
    }
    for f in &tool.outputs {
        let ws = words(&f.name);
        let Some(kind) = ws.last().and_then(|w| id_kind(w)) else {
            continue;
        };
        let ent: Vec<&String> = ws[..ws.len() - 1].iter().filter(|w| !is_role(w)).collect();
        let e = if !ent.is_empty() {
            Some(canon(&ent))
        } else if let Some(p) = &f.parent {
            Some(canon(&words(p)))
        } else if kind == IdKind::Name {
            None
        } else {
            sh.obj.clone()
        };
        if let Some(e) = e
            && !e.is_empty()
            && !taken.contains(e.as_str())
        {
            out.push(y(
                &e,
                kind,
                How::Carried,
                EvidenceKind::OutputSchema,
                format!("output field `{}`", f.path),
            ));
        }
    }
    out
}

fn kind_compatible(yielded: IdKind, taken: IdKind) -> bool {
    let link = |k| matches!(k, IdKind::Url | IdKind::Uri);
    if link(yielded) {
        link(taken)
    } else if link(taken) {
        yielded == IdKind::Id
    } else {
        true
    }
}

/// `project_issue` is an issue; an `item` of a subscription is not an `invoice_item`.
fn entity_match(taken: &str, yielded: &str, known: &HashSet<String>) -> bool {
    taken == yielded
        || (yielded.len() > taken.len()
            && yielded.ends_with(taken)
            && yielded.as_bytes()[yielded.len() - taken.len() - 1] == b'_'
            && known.contains(taken))
}

/// Output fields whose value is content or status, never a reference to something: a
/// `content` read is not the `content` written (`read_text_file` → `write_file`), a `status`
/// returned is not the status a caller sets.
fn is_content_word(w: &str) -> bool {
    matches!(
        w,
        "content"
            | "text"
            | "body"
            | "message"
            | "description"
            | "title"
            | "note"
            | "comment"
            | "summary"
            | "query"
            | "prompt"
            | "html"
            | "markdown"
            | "value"
            | "data"
            | "result"
            | "status"
            | "state"
            | "success"
            | "error"
            | "type"
            | "count"
            | "total"
            | "name"
            | "label"
            | "limit"
            | "page"
            | "size"
            | "format"
            | "mode"
            | "reason"
            | "detail"
            | "info"
            | "field"
    )
}

/// Whether an output field and an input parameter can hold the same value: same JSON type
/// (integer and number alike, unknown matches anything), or a list of what the output holds.
fn types_agree(out: &Field, input: &Field) -> bool {
    let scalar = |f: &Field| {
        f.types.is_empty()
            || f.types
                .iter()
                .any(|t| matches!(t.as_str(), "string" | "integer" | "number" | "boolean"))
    };
    if !scalar(out) {
        return false;
    }
    if input.types.is_empty() || out.types.is_empty() || input.has_type("array") {
        return true;
    }
    let numeric = |t: &str| matches!(t, "integer" | "number");
    out.types.iter().any(|a| {
        input
            .types
            .iter()
            .any(|b| a == b || (numeric(a) && numeric(b)))
    })
}

/// Edges where an output field of A has the (normalised) name of an input parameter of B and
/// can hold its value: `get_symbol_by_name` returns `symbol`, `get_stock_info(symbol)`. Content
/// and status fields are left out, and so is a field A itself takes (it returns what it was
/// given).
fn by_output_names(tools: &[ToolShape]) -> Vec<Edge> {
    let norm: Vec<(Vec<String>, Vec<String>)> = tools
        .iter()
        .map(|t| {
            (
                t.inputs.iter().map(|f| normalize(&f.name)).collect(),
                t.outputs.iter().map(|f| normalize(&f.name)).collect(),
            )
        })
        .collect();
    let mut out = vec![];
    for (i, a) in tools.iter().enumerate() {
        for (k, fa) in a.outputs.iter().enumerate() {
            let n = &norm[i].1[k];
            let last = n.rsplit('_').next().unwrap_or(n);
            // a bare `id` or `from` says nothing of what it names: the entity rules decide
            let bare = n.split('_').all(|w| id_kind(w).is_some() || is_role(w));
            if n.is_empty()
                || bare
                || is_content_word(last)
                || is_paging(&n.split('_').collect::<Vec<_>>())
                || norm[i].0.contains(n)
            {
                continue;
            }
            for (j, b) in tools.iter().enumerate() {
                if i == j {
                    continue;
                }
                for (l, fb) in b.inputs.iter().enumerate() {
                    if norm[j].0[l] != *n || fb.enumerated || !types_agree(fa, fb) {
                        continue;
                    }
                    out.push(Edge {
                        from: i,
                        to: j,
                        field: fb.top.clone(),
                        path: fb.path.clone(),
                        kind: EvidenceKind::OutputSchema,
                        entity: n.clone(),
                        evidence: format!(
                            "{} returns `{}` (output field `{}`); `{}` of {} takes it",
                            a.name, fa.name, fa.path, fb.path, b.name
                        ),
                        score: catalog_score(EvidenceKind::OutputSchema, How::Carried),
                        trajectories: None,
                    });
                }
            }
        }
    }
    out
}

/// The score of one piece of catalog evidence.
pub fn catalog_score(kind: EvidenceKind, how: How) -> f64 {
    match (kind, how) {
        (EvidenceKind::OutputSchema, _) => 0.85,
        (EvidenceKind::EntityId, How::Produced) => 0.8,
        (EvidenceKind::EntityId, How::CreatedName) => 0.6,
        (EvidenceKind::EntityId, _) => 0.75,
        (EvidenceKind::Description, How::Carried) => 0.55,
        (EvidenceKind::Description, _) => 0.6,
        (EvidenceKind::ObservedFlow, _) => 0.9,
    }
}

/// The edges between `tools` (all of one service), one per (from, to, parameter) with its
/// strongest evidence.
pub fn find_edges(tools: &[ToolShape]) -> Vec<Edge> {
    let (shapes, known) = analyse(tools);
    let slots: Vec<Vec<Slot>> = tools
        .iter()
        .zip(&shapes)
        .map(|(t, sh)| slots(t, sh, &known))
        .collect();
    let yields: Vec<Vec<Yield>> = tools
        .iter()
        .enumerate()
        .map(|(i, t)| yields(t, &shapes[i], &slots[i], &known))
        .collect();
    let mut edges: Vec<Edge> = vec![];
    let mut index: std::collections::HashMap<(usize, usize, String), usize> = Default::default();
    let mut keep = |edge: Edge, edges: &mut Vec<Edge>| {
        let key = (edge.from, edge.to, edge.field.clone());
        match index.get(&key) {
            Some(&k) if (edges[k].kind, -edges[k].score) <= (edge.kind, -edge.score) => {}
            Some(&k) => edges[k] = edge,
            None => {
                index.insert(key, edges.len());
                edges.push(edge);
            }
        }
    };
    for edge in by_output_names(tools) {
        keep(edge, &mut edges);
    }
    for (i, a) in tools.iter().enumerate() {
        if yields[i].is_empty() {
            continue;
        }
        let says_returns = shapes[i]
            .toks
            .iter()
            .any(|t| t.starts_with("return") || t.starts_with("confirm"));
        for (j, b) in tools.iter().enumerate() {
            if i == j {
                continue;
            }
            let bs = &shapes[j];
            let creates =
                matches!(bs.class(), Some(VerbClass::Produce | VerbClass::Named)) && !bs.attach;
            for slot in &slots[j] {
                // the name of what B creates is new: B does not consume it
                let own_object = bs.obj.iter().chain(bs.desc_objects.iter().take(1));
                if creates && !slot.role && own_object.clone().any(|o| slot.entities.contains(o)) {
                    continue;
                }
                for y in &yields[i] {
                    // a bare `path` takes any path a tool returns
                    let path_flow = y.kind == IdKind::Path && slot.entities == ["path"];
                    if !path_flow
                        && !slot
                            .entities
                            .iter()
                            .any(|e| entity_match(e, &y.entity, &known))
                    {
                        continue;
                    }
                    if !kind_compatible(y.kind, slot.kind) {
                        continue;
                    }
                    // a name, path or key the caller chose reaches B only when A says it returns it
                    if y.how == How::Produced
                        && slot.kind.is_chosen()
                        && (slot.kind == IdKind::Name
                            || slots[i]
                                .iter()
                                .any(|s| s.kind == slot.kind && s.entities.contains(&y.entity)))
                        && !(says_returns
                            && shapes[i]
                                .toks
                                .iter()
                                .any(|t| singular(t) == slot.kind.as_str()))
                    {
                        continue;
                    }
                    if y.how == How::CreatedName && !slot.kind.is_chosen() {
                        continue;
                    }
                    let field = &b.inputs[slot.field];
                    let score = catalog_score(y.evidence, y.how);
                    let evidence = format!(
                        "{} {} {} ({}); `{}` takes its {}",
                        a.name,
                        y.how.verb(),
                        y.entity.replace('_', " "),
                        y.source,
                        field.path,
                        slot.kind.as_str()
                    );
                    let edge = Edge {
                        from: i,
                        to: j,
                        field: field.top.clone(),
                        path: field.path.clone(),
                        kind: y.evidence,
                        entity: y.entity.clone(),
                        evidence,
                        score,
                        trajectories: None,
                    };
                    keep(edge, &mut edges);
                }
            }
        }
    }
    edges
}
