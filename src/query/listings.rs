//! The session's cache of table listings: DataFusion's own list-files cache, except that it also
//! remembers that a table is empty. (DataFusion's cache rejects entries of size zero, so a table
//! with no files yet — `clusters` before a build, `blueprints` before the first batch — would be
//! listed again by every query that reads it.)

use std::collections::HashMap as StdHashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use datafusion::common::{HashMap, Result, TableReference};
use datafusion::execution::cache::cache_manager::CachedFileList;
use datafusion::execution::cache::default_cache::DefaultCache;
use datafusion::execution::cache::{Cache, CacheEntryInfo, TableScopedPath};

/// The cache: non-empty listings in DataFusion's LRU cache, empty ones beside it.
pub struct TableListings {
    listed: DefaultCache<TableScopedPath, CachedFileList>,
    /// Keys whose listing was empty, with when that expires.
    empty: Mutex<StdHashMap<TableScopedPath, Option<Instant>>>,
}

impl TableListings {
    /// A cache of at most `memory_limit` bytes whose entries expire after `ttl`, if given.
    pub fn new(memory_limit: usize, ttl: Option<Duration>) -> Self {
        Self {
            listed: DefaultCache::new_with_ttl(memory_limit, ttl),
            empty: Mutex::new(StdHashMap::new()),
        }
    }

    fn empty_hit(&self, key: &TableScopedPath) -> bool {
        let mut empty = self.empty.lock().expect("lock");
        match empty.get(key) {
            Some(Some(expires)) if Instant::now() > *expires => {
                empty.remove(key);
                false
            }
            Some(_) => true,
            None => false,
        }
    }
}

impl Cache<TableScopedPath, CachedFileList> for TableListings {
    fn get(&self, key: &TableScopedPath) -> Option<CachedFileList> {
        if self.empty_hit(key) {
            return Some(CachedFileList::new(vec![]));
        }
        self.listed.get(key)
    }

    fn put(&self, key: &TableScopedPath, value: CachedFileList) -> Option<CachedFileList> {
        if value.files.is_empty() {
            let expires = self.listed.cache_ttl().map(|t| Instant::now() + t);
            self.empty
                .lock()
                .expect("lock")
                .insert(key.clone(), expires);
            self.listed.remove(key)
        } else {
            self.empty.lock().expect("lock").remove(key);
            self.listed.put(key, value)
        }
    }

    fn remove(&self, key: &TableScopedPath) -> Option<CachedFileList> {
        let was_empty = self.empty.lock().expect("lock").remove(key).is_some();
        self.listed
            .remove(key)
            .or_else(|| was_empty.then(|| CachedFileList::new(vec![])))
    }

    fn contains_key(&self, key: &TableScopedPath) -> bool {
        self.empty_hit(key) || self.listed.contains_key(key)
    }

    fn len(&self) -> usize {
        self.listed.len() + self.empty.lock().expect("lock").len()
    }

    fn clear(&self) {
        self.listed.clear();
        self.empty.lock().expect("lock").clear();
    }

    fn name(&self) -> String {
        "tdscale table listings".into()
    }

    fn cache_limit(&self) -> usize {
        self.listed.cache_limit()
    }

    fn update_cache_limit(&self, limit: usize) {
        self.listed.update_cache_limit(limit)
    }

    fn cache_ttl(&self) -> Option<Duration> {
        self.listed.cache_ttl()
    }

    fn update_cache_ttl(&self, ttl: Option<Duration>) {
        self.listed.update_cache_ttl(ttl)
    }

    fn drop_table_entries(&self, table_ref: &TableReference) -> Result<()> {
        self.empty
            .lock()
            .expect("lock")
            .retain(|k, _| k.table.as_ref() != Some(table_ref));
        self.listed.drop_table_entries(table_ref)
    }

    fn list_entries(&self) -> HashMap<TableScopedPath, CacheEntryInfo<CachedFileList>> {
        self.listed.list_entries()
    }
}
