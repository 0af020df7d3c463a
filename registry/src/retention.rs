//! Audit retention (`serve --audit-keep DAYS`): events older than the
//! retention period are deleted in small batches ([`Retention::batch`]
//! events per transaction, a short pause between batches, so gateways and
//! admins writing at the same time are never held up for long), once at
//! start and then every [`Retention::every`]. Each run that deleted
//! something leaves one `audit.prune` event saying how many and up to when.

use crate::model::{AuditEvent, Timestamp, now};
use crate::store::Store;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Default of `--audit-keep`, in days.
pub const DEFAULT_KEEP_DAYS: u32 = 365;

/// How long audit events are kept, and how they are deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Events older than this are deleted.
    pub keep: Duration,
    /// A deletion run starts this often.
    pub every: Duration,
    /// Events deleted per transaction.
    pub batch: u32,
    /// Pause between two batches of one run.
    pub pause: Duration,
}

impl Retention {
    /// Keep `days` days; runs hourly, 500 events per batch.
    pub fn days(days: u32) -> Retention {
        Retention {
            keep: Duration::from_secs(u64::from(days) * 86_400),
            every: Duration::from_secs(3600),
            batch: 500,
            pause: Duration::from_millis(20),
        }
    }

    /// The oldest time kept at `now`.
    pub fn cutoff(&self, now: Timestamp) -> Timestamp {
        now.saturating_sub(i64::try_from(self.keep.as_secs()).unwrap_or(i64::MAX))
    }
}

impl Default for Retention {
    fn default() -> Self {
        Retention::days(DEFAULT_KEEP_DAYS)
    }
}

/// One run: delete every event older than the cutoff, batch by batch.
/// Returns how many were deleted.
pub async fn run_once(store: &Arc<Store>, r: &Retention) -> Result<u64, String> {
    let before = r.cutoff(now());
    let mut total = 0u64;
    loop {
        let s = store.clone();
        let batch = r.batch.max(1);
        let n = tokio::task::spawn_blocking(move || s.prune_audit(before, batch))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        total += n;
        if n < u64::from(batch) {
            break;
        }
        tokio::time::sleep(r.pause).await;
    }
    if total > 0 {
        tracing::info!(deleted = total, before, "old audit events deleted");
        let event = AuditEvent {
            kind: "audit.prune".into(),
            actor: "registry:retention".into(),
            user: None,
            fingerprint: None,
            source: None,
            detail: serde_json::json!({ "deleted": total, "before": before }),
        };
        let s = store.clone();
        tokio::task::spawn_blocking(move || s.record(&event))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
    }
    Ok(total)
}

/// Run deletion every [`Retention::every`] until `stop` completes. A
/// failed run (database unreachable) is logged and retried next time.
pub async fn run(store: Arc<Store>, r: Retention, stop: impl Future<Output = ()>) {
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            res = run_once(&store, &r) => {
                if let Err(e) = res {
                    tracing::warn!(err = %e, "audit retention run failed; trying again later");
                }
            }
        }
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(r.every) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutoff_is_keep_before_now() {
        assert_eq!(
            Retention::days(365).cutoff(1_000_000_000),
            1_000_000_000 - 365 * 86_400
        );
        assert_eq!(Retention::days(0).cutoff(5), 5);
        let r = Retention {
            keep: Duration::from_secs(u64::MAX),
            ..Retention::default()
        };
        assert_eq!(r.cutoff(5), 5 - i64::MAX);
    }
}
