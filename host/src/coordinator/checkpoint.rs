//! Checkpoints and the watch on persistence: BGSAVE on a timer (one server
//! or a Sentinel's master; a Cluster's persistence is its operator's), each
//! save's outcome recorded as an event, and a look at every primary's
//! persistence status, so that a failing snapshot or append-only file is
//! reported at once and in the summary, never silent; and (for the chaos
//! option) knowing when the job's progress is in a snapshot.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::protocol::{Checkpoint, EventKind, Store};

/// What the watch found, shared with the coordinator for the progress line
/// and the summary.
#[derive(Debug, Default, Clone)]
pub struct PersistenceReport {
    /// Snapshots that failed (or were refused) while the job ran.
    pub checkpoints_failed: u64,
    /// Each distinct problem once, with what it means and what to do.
    pub warnings: Vec<String>,
}

impl PersistenceReport {
    fn warn(&mut self, message: String) {
        if !self.warnings.contains(&message) {
            tracing::warn!("{message}");
            self.warnings.push(message);
        }
    }
}

/// Every `interval` until `stop`: a BGSAVE when `bgsave` (a save already
/// running is fine) whose outcome is recorded, and a look at every
/// primary's persistence status.
pub fn start_checkpoints(
    mut store: Store,
    interval: Duration,
    bgsave: bool,
    report: Arc<Mutex<PersistenceReport>>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    Ok(std::thread::Builder::new().name("checkpoints".into()).spawn(move || {
        let mut bgsave = bgsave;
        let mut next = Instant::now() + interval;
        // Saves completed before the BGSAVE we wait for.
        let mut waiting_for: Option<u64> = None;
        let fail = |store: &mut Store, report: &Mutex<PersistenceReport>, error: String| {
            report.lock().unwrap().checkpoints_failed += 1;
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
                        fail(&mut store, &report, "BGSAVE failed (rdb_last_bgsave_status:err; see the Redis log)".into());
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
            watch(&mut store, interval, &report);
            if !bgsave {
                continue;
            }
            let before = store.persistence().map(|p| p.rdb_saves).ok();
            match store.checkpoint(interval) {
                Checkpoint::Started => {
                    tracing::debug!("checkpoint: BGSAVE started");
                    waiting_for = waiting_for.or(before);
                }
                Checkpoint::AlreadyRunning => {}
                Checkpoint::Denied(e) => {
                    report.lock().unwrap().warn(format!(
                        "checkpoints are off: Redis refuses BGSAVE to this user ({e}); a Redis crash loses everything since its own last save (counts stay exact: the work is redone). Grant +bgsave."
                    ));
                    fail(&mut store, &report, e);
                    bgsave = false;
                }
                Checkpoint::Failed(e) => {
                    report.lock().unwrap().warn(format!("a checkpoint (BGSAVE) was refused: {e}"));
                    fail(&mut store, &report, e);
                }
            }
        }
    })?)
}

/// Reads every primary's persistence status and reports what fails.
fn watch(store: &mut Store, patience: Duration, report: &Mutex<PersistenceReport>) {
    let nodes = match store.persistence_of_primaries(patience) {
        Ok(nodes) => nodes,
        Err(e) => {
            tracing::debug!("persistence status unavailable: {e:#}");
            return;
        }
    };
    let mut report = report.lock().unwrap();
    for (node, p) in &nodes {
        if p.last_bgsave_status == "err" {
            report.warn(format!(
                "Redis {node}: its last snapshot (BGSAVE) FAILED (rdb_last_bgsave_status:err; see its log: disk full? permissions?). \
                 Checkpoints are not protecting this job: a Redis crash now loses all work since its last good snapshot \
                 (counts stay exact: the work is redone). Counting goes on; fix the disk and the next checkpoint succeeds."
            ));
        }
        if p.aof_enabled && p.aof_last_write_status == "err" {
            report.warn(format!(
                "Redis {node}: writing its append-only file FAILED (aof_last_write_status:err). It will refuse writes until the disk \
                 is fixed; the job waits and carries on (counts stay exact)."
            ));
        }
    }
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

