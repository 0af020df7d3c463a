//! Store calls from async code. The store is synchronous (SQLite, or
//! PostgreSQL behind its own runtime), so a request handler or an SSH
//! session runs each call on tokio's blocking pool.

use crate::error::RegistryError;
use crate::store::{Store, StoreResult};
use std::sync::Arc;

/// Run `f` on the store on the blocking pool; a call that panicked is a
/// database error.
pub(crate) async fn blocking<T, F>(store: &Arc<Store>, f: F) -> StoreResult<T>
where
    T: Send + 'static,
    F: FnOnce(&Store) -> StoreResult<T> + Send + 'static,
{
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .map_err(|e| RegistryError::Database(format!("store call failed: {e}")))?
}
