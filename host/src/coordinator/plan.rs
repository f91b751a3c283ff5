//! Planning: the job's identity, and its tasks found in the background and
//! added to the manifest as they come, so that workers start on a large
//! file while it is still being split.

use std::sync::mpsc::{Receiver, TryRecvError};

use anyhow::Context;
use sha2::{Digest, Sha256};

use super::Coordinator;
use crate::protocol::{field, EventKind};
use crate::config::Config;
use crate::input::{resolve_inputs, split_identified, FileIdentity, InputError};
use crate::protocol::{CommitMode, Task};

/// The job's identity: the rule (plugin hash and parameters) and the input
/// (each file's canonical path, size and mtime, and the split size), which
/// determine the tasks, and the number of partitions, which places them.
pub(super) fn job_id(plugin_hash: &str, params: &[(String, String)], config: &Config, commit_mode: CommitMode, split_bytes: u64, files: &[FileIdentity], partitions: u32) -> String {
    let mut h = Sha256::new();
    h.update(plugin_hash.as_bytes());
    h.update(serde_json::to_vec(params).expect("params serialise"));
    h.update(config.count_key.as_bytes());
    h.update(config.stream.as_bytes());
    h.update(format!("{commit_mode:?}").as_bytes());
    h.update(split_bytes.to_le_bytes());
    h.update(serde_json::to_vec(files).expect("identities serialise"));
    // The key layout depends on it (one partition: the layout of old jobs,
    // whose ids stay what they were).
    if partitions != 1 {
        h.update(partitions.to_le_bytes());
    }
    hex::encode(&h.finalize()[..8])
}

/// The planner thread and what it was given.
pub(super) struct Planner {
    /// The files as they were when the job started: the plan is theirs.
    pub identities: Vec<FileIdentity>,
    pub total_bytes: u64,
    pub split_bytes: u64,
    tasks: Receiver<Result<Task, InputError>>,
}

impl Planner {
    /// Resolves the inputs and starts splitting them on a thread.
    pub fn start(inputs: &[String], config: &Config) -> anyhow::Result<Planner> {
        let files = resolve_inputs(inputs)?;
        let split_bytes = (config.split_mb * 1_048_576.0) as u64;
        let identities = files.iter().map(|f| FileIdentity::of(f)).collect::<Result<Vec<_>, _>>()?;
        let total_bytes = identities.iter().map(|f| f.size).sum();
        let (sender, tasks) = std::sync::mpsc::channel();
        let planned = identities.clone();
        std::thread::Builder::new().name("planner".into()).spawn(move || {
            for file in planned {
                let sent = split_identified(file, split_bytes, |range| {
                    let _ = sender.send(Ok(Task::new(range)));
                });
                if let Err(e) = sent {
                    let _ = sender.send(Err(e));
                    return;
                }
            }
        })?;
        Ok(Planner { identities, total_bytes, split_bytes, tasks })
    }

    pub fn files(&self) -> usize {
        self.identities.len()
    }
}

impl Coordinator {
    /// Adds the tasks the planner found since the last call to the manifest
    /// (and the job's total once it is done). True when tasks were added.
    pub(super) fn take_planned(&mut self) -> anyhow::Result<bool> {
        let Some(planner) = &self.planner else { return Ok(false) };
        let mut added = false;
        loop {
            match planner.tasks.try_recv() {
                Ok(Ok(task)) => {
                    // A task id twice (one file reached by two names) would
                    // never let the job finish; the resolver already folds those.
                    if self.task_ids.insert(task.id.clone()) {
                        self.tasks.push(task);
                        added = true;
                    }
                }
                Ok(Err(e)) => return Err(e).context("planning the tasks"),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    self.planner = None;
                    self.meta.total_tasks = self.tasks.len() as u64;
                    self.store.set_total_tasks(self.meta.total_tasks)?;
                    self.store.record_event(EventKind::Planned, &[("tasks", self.meta.total_tasks.to_string())]);
                    tracing::debug!("planned {} tasks", self.meta.total_tasks);
                    break;
                }
            }
        }
        if added {
            // `status` shows the tasks planned so far while planning goes on.
            self.store.set_meta_fields(&[(field::PLANNED_TASKS, self.tasks.len().to_string())])?;
        }
        Ok(added)
    }

    /// Waits for the whole plan (a finished job is only reported, but its
    /// summary needs the manifest).
    pub(super) fn take_whole_plan(&mut self) -> anyhow::Result<()> {
        while self.planner.is_some() {
            self.take_planned()?;
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        Ok(())
    }
}
