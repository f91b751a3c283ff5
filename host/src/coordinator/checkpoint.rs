//! Checkpoints: BGSAVE on a timer, and (for the chaos option) knowing when
//! the job's progress is in a snapshot.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::protocol::{Checkpoint, Store};

/// BGSAVE every `interval` until `stop`; a save already running is fine.
pub fn start_checkpoints(mut store: Store, interval: Duration, stop: Arc<AtomicBool>) -> anyhow::Result<std::thread::JoinHandle<()>> {
    Ok(std::thread::Builder::new().name("checkpoints".into()).spawn(move || {
        let mut next = Instant::now() + interval;
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
            if Instant::now() < next {
                continue;
            }
            next = Instant::now() + interval;
            match store.checkpoint(interval) {
                Checkpoint::Started => tracing::debug!("checkpoint: BGSAVE started"),
                Checkpoint::AlreadyRunning => {}
                Checkpoint::Denied(e) => {
                    tracing::warn!("checkpoints are off: Redis refuses BGSAVE to this user ({e}); a Redis crash loses everything since its own last save. Grant +bgsave.");
                    return;
                }
                Checkpoint::Failed(e) => tracing::debug!("checkpoint skipped: {e}"),
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

