//! The CORS origins of the apps (SPEC §3.2), cached briefly: every
//! request of a browser app asks, and the answer changes only when an app
//! is saved.

use std::collections::HashSet;

use tokio::sync::RwLock;

use crate::{Result, Services};

/// How long the origin list is cached (seconds): a new app is allowed
/// within this time.
pub const ORIGINS_TTL: i64 = 30;

/// The origins of every registered redirect URI ([`app_origins`]), with the
/// time they were read. A failing database allows no origin until it
/// answers again.
#[derive(Debug, Default)]
pub struct Origins(RwLock<(i64, HashSet<String>)>);

impl Origins {
    /// An empty cache: the first question reads the apps.
    pub fn new() -> Self {
        Self::default()
    }

    /// The apps' origins, read again when the cached list is older than
    /// [`ORIGINS_TTL`] (or from the future: the clock went back).
    pub async fn get(&self, svc: &Services) -> HashSet<String> {
        self.cached(svc.now(), || super::app_origins(svc)).await
    }

    /// The cached list at `now`, or `read`'s answer (nothing when it
    /// fails), kept from `now` on.
    async fn cached<F>(&self, now: i64, read: impl FnOnce() -> F) -> HashSet<String>
    where
        F: std::future::Future<Output = Result<HashSet<String>>>,
    {
        {
            let cached = self.0.read().await;
            if now - cached.0 < ORIGINS_TTL && now >= cached.0 {
                return cached.1.clone();
            }
        }
        let origins = read().await.unwrap_or_default();
        *self.0.write().await = (now, origins.clone());
        origins
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AuthError;

    fn set(origins: &[&str]) -> HashSet<String> {
        origins.iter().map(|o| (*o).to_owned()).collect()
    }

    #[tokio::test]
    async fn origins_are_kept_for_thirty_seconds_and_a_failure_allows_none() {
        let cache = Origins::new();
        let a = || async { Ok(set(&["https://a.example"])) };
        let b = || async { Ok(set(&["https://b.example"])) };
        let down = || async { Err(AuthError::internal("database down")) };
        // The first question reads (the cache starts at time 0, empty).
        assert_eq!(cache.cached(1_000, a).await, set(&["https://a.example"]));
        // Within the TTL the list is not read again.
        assert_eq!(cache.cached(1_029, b).await, set(&["https://a.example"]));
        // After it, it is.
        assert_eq!(cache.cached(1_030, b).await, set(&["https://b.example"]));
        // A clock that went back reads again too.
        assert_eq!(cache.cached(999, a).await, set(&["https://a.example"]));
        // A failing database allows no origin, and that is cached as well.
        assert_eq!(cache.cached(2_000, down).await, HashSet::new());
        assert_eq!(cache.cached(2_001, a).await, HashSet::new());
    }
}
