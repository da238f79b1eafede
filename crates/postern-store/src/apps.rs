//! Apps kept in memory for the request paths ([`crate::Store::app`]).
//!
//! Every sign-in reads its app at least twice (the request, the link) and
//! an app changes perhaps once a month, so reading it from the database
//! each time (a round trip and a JSON parse of its settings) was a
//! noticeable share of a request. An entry lives [`APP_CACHE_TTL`]; a write
//! through this instance's store empties the cache at once; other instances
//! and the CLI (its own process) are seen within the TTL.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use postern_core::App;

/// How long an instance may keep answering with an app another instance
/// (or the CLI) has since changed.
pub const APP_CACHE_TTL: Duration = Duration::from_secs(2);

/// Apps kept at most; past it the cache starts over (client ids are
/// checked to exist before they are cached, so only real apps count).
const MAX_APPS: usize = 4096;

#[derive(Default)]
pub struct AppCache {
    inner: RwLock<Inner>,
}

impl std::fmt::Debug for AppCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppCache(..)")
    }
}

#[derive(Default)]
struct Inner {
    /// Bumped by every invalidation, so that a read that started before a
    /// change cannot put the old app back after it.
    generation: u64,
    apps: HashMap<String, (Instant, App)>,
}

pub(crate) enum Lookup {
    Hit(Box<App>),
    /// Not cached (or too old): read it, then [`AppCache::put`] it with
    /// this generation.
    Miss(u64),
}

impl AppCache {
    pub(crate) fn get(&self, client_id: &str) -> Lookup {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        match inner.apps.get(client_id) {
            Some((at, app)) if at.elapsed() < APP_CACHE_TTL => Lookup::Hit(Box::new(app.clone())),
            _ => Lookup::Miss(inner.generation),
        }
    }

    /// Keeps `app`, read when the cache was at `generation`, unless the
    /// cache was emptied since.
    pub(crate) fn put(&self, generation: u64, app: &App) {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if inner.generation != generation {
            return;
        }
        if inner.apps.len() >= MAX_APPS {
            inner.apps.clear();
        }
        inner
            .apps
            .insert(app.client_id.clone(), (Instant::now(), app.clone()));
    }

    pub(crate) fn clear(&self) {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        inner.generation += 1;
        inner.apps.clear();
    }
}
