//! Checkpoints: BGSAVE on a timer, and (for the chaos option) knowing when
//! the job's progress is in a snapshot.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::protocol::{Checkpoint, EventKind, Store};

/// BGSAVE every `interval` until `stop`; a save already running is fine.
/// Each completed or failed save is recorded as an event; failures are
/// counted in `failed`.
pub fn start_checkpoints(mut store: Store, interval: Duration, stop: Arc<AtomicBool>, failed: Arc<AtomicU64>) -> anyhow::Result<std::thread::JoinHandle<()>> {
    Ok(std::thread::Builder::new().name("checkpoints".into()).spawn(move || {
        let mut next = Instant::now() + interval;
        // Saves completed before the BGSAVE we wait for.
        let mut waiting_for: Option<u64> = None;
        let fail = |store: &mut Store, error: String| {
            failed.fetch_add(1, Ordering::SeqCst);
            store.record_event(EventKind::CheckpointFailed, &[("error", error)]);
        };
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
            if let Some(before) = waiting_for {
                match store.persistence() {
                    Ok(p) if p.bgsave_in_progress => {}
                    Ok(p) if p.rdb_saves > before && p.last_bgsave_status == "ok" => {
                        store.record_event(EventKind::CheckpointTaken, &[("saves", p.rdb_saves.to_string())]);
                        waiting_for = None;
                    }
                    Ok(p) if p.last_bgsave_status == "err" => {
                        fail(&mut store, "BGSAVE failed (rdb_last_bgsave_status:err; see the Redis log)".into());
                        waiting_for = None;
                    }
                    // A restart in between (the count starts again), or not started yet.
                    Ok(p) if p.rdb_saves < before => waiting_for = None,
                    _ => {}
                }
            }
            if Instant::now() < next {
                continue;
            }
            next = Instant::now() + interval;
            let before = store.persistence().map(|p| p.rdb_saves).ok();
            match store.checkpoint(interval) {
                Checkpoint::Started => {
                    tracing::debug!("checkpoint: BGSAVE started");
                    waiting_for = waiting_for.or(before);
                }
                Checkpoint::AlreadyRunning => {}
                Checkpoint::Denied(e) => {
                    tracing::warn!("checkpoints are off: Redis refuses BGSAVE to this user ({e}); a Redis crash loses everything since its own last save. Grant +bgsave.");
                    fail(&mut store, e);
                    return;
                }
                Checkpoint::Failed(e) => {
                    tracing::debug!("checkpoint skipped: {e}");
                    fail(&mut store, e);
                }
            }
        }
    })?)
}

/// Whether the job has made progress since the last chaos kill and a
/// snapshot (or the append-only file) holds it.
#[derive(Default)]
pub struct ChaosProgress {
    /// Tasks done when first looked at after a restart.
    floor: Option<u64>,
    /// Once more tasks than `floor` are done: the count of completed saves
    /// that must be passed for a save to include them, and when.
    progressed: Option<(u64, Instant)>,
    /// With an append-only file, progress is on disk a second later.
    aof: bool,
}

impl ChaosProgress {
    /// `aof`: the Redis keeps an append-only file (fsync every second).
    pub fn new(aof: bool) -> ChaosProgress {
        ChaosProgress { aof, ..ChaosProgress::default() }
    }

    pub fn saved(&mut self, store: &mut Store) -> anyhow::Result<bool> {
        let done = store.counters()?.tasks_done;
        let persistence = store.persistence()?;
        let saves = persistence.rdb_saves;
        let floor = *self.floor.get_or_insert(done);
        if done > floor && self.progressed.is_none() {
            // A save running now may have forked before the progress.
            self.progressed = Some((saves + persistence.bgsave_in_progress as u64, Instant::now()));
        }
        Ok(self.progressed.is_some_and(|(needed, at)| saves > needed || (self.aof && at.elapsed() > Duration::from_millis(1100))))
    }
}

