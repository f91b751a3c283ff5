//! The exactly-once protocol: the one place to read to know why every count
//! lands once, whatever fails.
//!
//! - `wc_functions.lua`: the Redis Function library. Every write a worker
//!   makes to a job goes through one of its functions, each one atomic unit.
//! - [`commit`]: one typed Rust call per Lua function (KEYS/ARGV built there
//!   and nowhere else).
//! - [`keys`]: the key layout and the meta hash's field names.
//! - [`tasks`]: submitting, claiming, stealing and keeping tasks; what Redis
//!   says about them (done, dead, live in the stream).
//! - [`job`], [`results`], [`server`]: the job's record, its counts, and
//!   what is asked of the server (run id, checkpoints).
//! - [`events`]: the job's story for people (fault and progress events,
//!   workers alive): records, not part of the exactly-once protocol.
//! - [`connection`]: the connection, its retry with backoff, and the
//!   reload of the library and group after every reconnect.
//!
//! # Invariants
//!
//! 1. **The done-set is the gate.** A task's id comes from what it is (file
//!    identity and byte range, [`Task::new`]), not from its stream entry. A
//!    commit applies counts only if it adds the id to the done-set (`SADD`
//!    returns 1), in the same atomic call. Duplicate entries, re-submissions,
//!    stolen tasks and late commits of robbed workers therefore count once.
//!    XACK is not the gate: it returns 0 without error when a restore lost the
//!    group, and succeeds for a late worker after a steal.
//! 2. **Validate before the first write.** A function that fails after writing
//!    keeps its writes (no rollback), so each checks all arguments first.
//! 3. **Every call is idempotent**, so [`Store::with_retry`] may run it again
//!    after any transient error, without knowing whether it was applied.
//! 4. **Deterministic parts.** A live-mode task too large for one bounded
//!    call is cut into parts that are a function of the task alone (pairs in
//!    a total order, fixed size: [`Store::commit_live`]); part ids are gated
//!    like task ids.
//! 5. **Rollbacks are restores.** A Redis restart restores a snapshot in which
//!    counts, done-set, stream and pending entries roll back together. The
//!    coordinator keeps the manifest, notices the restart (a changed run id),
//!    re-registers the job and re-submits every task neither done, dead nor
//!    live in the stream ([`Store::live_task_ids`]: undelivered or pending;
//!    an entry stranded by a recreated group is not live).
//! 6. **Finished means checked in Redis**: every manifest task in the
//!    done-set or dead-lettered ([`Store::finished_mask`]), never "the stream
//!    looks empty". Reduce mode publishes the sorted set only if it holds
//!    exactly the merged keys (`wc_publish_counts`), atomically with the
//!    job's state.
//! 7. **One slot per call.** Every key carries the hash tag `{job id}`, so a
//!    function call touches one cluster slot.

pub mod blob;
pub mod commit;
pub mod connection;
pub mod dump;
pub mod events;
pub mod job;
pub mod keys;
pub mod meta;
pub mod results;
pub mod server;
pub mod tasks;

pub use commit::{FailOutcome, MAX_PAIRS_PER_CALL};
pub use connection::{ensure_group, is_denied, is_out_of_memory, redact, Patience, Store};
pub use events::{now_ms, Event, EventKind, WorkerRecord, WORKER_TTL};
pub use keys::{field, Keys, GROUP, LATEST_JOB_KEY, STATE_FINISHED, STATE_RUNNING};
pub use meta::{CommitMode, JobCounters, JobMeta};
pub use results::SetEncoding;
pub use server::{Checkpoint, Persistence};
pub use tasks::{entry_fields, xadd_task, Entry, Task};

/// The function library, loaded with `FUNCTION LOAD REPLACE` on every
/// (re)connect.
pub const FUNCTIONS: &str = include_str!("wc_functions.lua");

#[cfg(test)]
mod tests {
    use super::*;

    /// The Lua library names the meta fields it writes in its `FIELD`
    /// table; they must be the fields Rust reads.
    #[test]
    fn lua_field_table_matches_the_rust_field_names() {
        let start = FUNCTIONS.find("local FIELD = {").expect("the Lua library has a FIELD table");
        let table = &FUNCTIONS[start + "local FIELD = {".len()..start + FUNCTIONS[start..].find('}').unwrap()];
        let mut lua: Vec<(String, String)> = table
            .split(',')
            .filter_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                Some((name.trim().to_string(), value.trim().trim_matches('\'').to_string()))
            })
            .collect();
        lua.sort();
        let mut rust: Vec<(String, String)> = field::WRITTEN_BY_FUNCTIONS.iter().map(|f| (f.to_string(), f.to_string())).collect();
        rust.sort();
        assert_eq!(lua, rust);
    }

    /// Every field the Lua writes goes through the FIELD table, not a bare string.
    #[test]
    fn lua_writes_meta_fields_only_through_the_table() {
        for line in FUNCTIONS.lines().filter(|l| l.contains("'HINCRBY', meta") || l.contains("'HSET', meta")) {
            assert!(line.contains("FIELD.") || line.contains("name"), "bare meta field in: {line}");
        }
    }
}
