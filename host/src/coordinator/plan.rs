//! Planning: the job's identity, and its tasks found in the background and
//! added to the manifest as they come, so that workers start on a large
//! file while it is still being split.

use std::sync::mpsc::{Receiver, TryRecvError};

use anyhow::Context;
use sha2::{Digest, Sha256};

use super::Coordinator;
use crate::protocol::{field, EventKind};
use crate::config::Config;
use crate::input::{
    plan_file, read_header, resolve_inputs, ColumnMap, Encoded, Encoding, FileIdentity, Header, InputError, InputFormat, InputRange, Planned, SplitOptions,
};
use crate::protocol::{CommitMode, Task};
use crate::report::SkippedInput;

/// The job's identity: the rule (plugin hash and parameters) and the input
/// (each file's canonical path, size and mtime, the split size, and how the
/// files are read when that is not the default), which determine the tasks,
/// and the number of partitions, which places them.
#[allow(clippy::too_many_arguments)]
pub(super) fn job_id(
    plugin_hash: &str,
    params: &[(String, String)],
    config: &Config,
    commit_mode: CommitMode,
    split_bytes: u64,
    files: &[FileIdentity],
    format: &InputFormat,
    partitions: u32,
) -> String {
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
    // Left out when default, so that earlier jobs keep their ids.
    if !format.is_default() {
        h.update(serde_json::to_vec(&(&format.columns.0, format.delimiter, format.mixed_headers)).expect("format serialises"));
    }
    hex::encode(&h.finalize()[..8])
}

/// A hash of the inputs alone (which files, as they are now), so that a
/// new job can tell it counts the same files as an earlier one.
pub(super) fn inputs_id(files: &[FileIdentity]) -> String {
    hex::encode(&Sha256::digest(serde_json::to_vec(files).expect("identities serialise"))[..8])
}

/// The planner thread and what it was given.
pub(super) struct Planner {
    /// The files as they were when the job started: the plan is theirs.
    pub identities: Vec<FileIdentity>,
    pub total_bytes: u64,
    pub split_bytes: u64,
    /// The header every file must have (`None` with `--mixed-headers`, or
    /// when no file has the plugin's columns).
    pub header: Option<Header>,
    tasks: Receiver<Result<Planned, InputError>>,
}

impl Planner {
    /// Resolves the inputs, takes each file's identity and encoding (here,
    /// before the job starts, so the plan is of the files as they were),
    /// finds the job's header, and starts splitting the files on a thread.
    pub fn start(inputs: &[String], config: &Config, format: &InputFormat, columns: &[String]) -> anyhow::Result<Planner> {
        let files = resolve_inputs(inputs)?;
        let split_bytes = (config.split_mb * 1_048_576.0) as u64;
        let identities = files.iter().map(|f| FileIdentity::of(f)).collect::<Result<Vec<_>, _>>()?;
        let encodings = files.iter().map(|f| Encoding::detect(f)).collect::<Result<Vec<_>, _>>()?;
        let total_bytes = identities.iter().map(|f| f.size).sum();
        let options = SplitOptions { delimiter: format.delimiter };
        let header = if format.mixed_headers { None } else { job_header(&identities, &encodings, &options, &format.columns, columns) };
        let (sender, tasks) = std::sync::mpsc::channel();
        let planned: Vec<(FileIdentity, Encoding)> = identities.iter().cloned().zip(encodings).collect();
        std::thread::Builder::new().name("planner".into()).spawn(move || {
            for (file, encoding) in planned {
                let sent = plan_file(file, encoding, split_bytes, &options, |planned| {
                    let _ = sender.send(Ok(planned));
                });
                if let Err(e) = sent {
                    let _ = sender.send(Err(e));
                    return;
                }
            }
        })?;
        Ok(Planner { identities, total_bytes, split_bytes, header, tasks })
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
                Ok(Ok(Planned::Range(range))) => {
                    let task = Task::new(range);
                    // A task id twice (one file reached by two names) would
                    // never let the job finish; the resolver already folds those.
                    if self.task_ids.insert(task.id.clone()) {
                        self.first_planned.get_or_insert_with(std::time::Instant::now);
                        self.tasks.push(task);
                        added = true;
                    }
                }
                Ok(Ok(Planned::Skipped { file, member, reason })) => {
                    tracing::warn!("{}: member `{member}` skipped: {reason}", file.display());
                    self.skipped.push(SkippedInput { file: file.display().to_string(), member, reason });
                }
                Ok(Ok(Planned::Note(note))) => tracing::warn!("plan: {note}"),
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

/// The first file (or zip member) whose header has the plugin's columns:
/// every other file must have the same header. Files without those columns
/// fail on their own, naming what they lack; unreadable ones too.
fn job_header(identities: &[FileIdentity], encodings: &[Encoding], options: &SplitOptions, map: &ColumnMap, columns: &[String]) -> Option<Header> {
    for (file, &encoding) in identities.iter().zip(encodings) {
        let mut firsts: Vec<InputRange> = Vec::new();
        if encoding == Encoding::Zip {
            let _ = plan_file(file.clone(), encoding, u64::MAX, options, |planned| {
                if let Planned::Range(range) = planned {
                    firsts.push(range);
                }
            });
        } else {
            let name = file.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let encoded = encoding.is_stream().then_some(Encoded { encoding, member: None, skip: 0, len: None });
            firsts.push(InputRange {
                delimiter: crate::input::delimiter_for(&name, options.delimiter),
                encoded,
                ..InputRange::plain(file.clone(), 0, file.size, 1)
            });
        }
        for range in firsts {
            if let Ok(Some(header)) = read_header(&range) {
                if columns.iter().all(|c| header.names.iter().any(|n| n == map.header_for(c))) {
                    return Some(header);
                }
            }
        }
    }
    None
}
