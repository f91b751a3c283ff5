//! What Redis says about a job's tasks: which are done, dead-lettered, or
//! still live in the stream.

use std::collections::HashSet;

use redis::{Connection, Value};

use super::{as_string, ensure_group, Keys, GROUP};

/// Task ids of the stream entries that some worker will still get: not yet
/// delivered to the group, or pending (delivered, not acked). Entries are
/// deleted when their task is committed or retried, but one can also be
/// stranded — delivered, then its pending record lost with a recreated
/// group — and those must be submitted again.
pub fn stream_task_ids(conn: &mut Connection, keys: &Keys) -> redis::RedisResult<HashSet<String>> {
    ensure_group(conn, keys)?;
    let groups: Value = redis::cmd("XINFO").arg("GROUPS").arg(&keys.stream).query(conn)?;
    let last_delivered = group_field(&groups, GROUP, "last-delivered-id").and_then(|id| parse_stream_id(&id)).unwrap_or((0, 0));
    let mut pending = HashSet::new();
    let mut start = "-".to_string();
    loop {
        let page: Value = redis::cmd("XPENDING").arg(&keys.stream).arg(GROUP).arg(&start).arg("+").arg(1000).query(conn)?;
        let Value::Array(rows) = &page else { break };
        let mut last = None;
        for row in rows {
            if let Value::Array(fields) = row {
                last = fields.first().and_then(as_string);
                pending.extend(last.clone());
            }
        }
        match (rows.len(), last) {
            (1000, Some(id)) => start = format!("({id}"),
            _ => break,
        }
    }
    let mut ids = HashSet::new();
    let mut start = "-".to_string();
    loop {
        let page: Value = redis::cmd("XRANGE").arg(&keys.stream).arg(&start).arg("+").arg("COUNT").arg(1000).query(conn)?;
        let Value::Array(items) = &page else { break };
        let mut last = None;
        for item in items {
            let Value::Array(pair) = item else { continue };
            let Some(entry_id) = pair.first().and_then(as_string) else { continue };
            last = Some(entry_id.clone());
            let live = parse_stream_id(&entry_id).is_some_and(|id| id > last_delivered) || pending.contains(&entry_id);
            if !live {
                continue;
            }
            if let Some(Value::Array(fields)) = pair.get(1) {
                for kv in fields.chunks(2) {
                    if as_string(&kv[0]).as_deref() == Some("task") {
                        ids.extend(kv.get(1).and_then(as_string));
                    }
                }
            }
        }
        match (items.len(), last) {
            (1000, Some(id)) => start = format!("({id}"),
            _ => break,
        }
    }
    Ok(ids)
}

pub fn parse_stream_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// A field of one group in an `XINFO GROUPS` reply (RESP2 flat pairs or RESP3 map).
pub fn group_field(groups: &Value, group: &str, field: &str) -> Option<String> {
    let Value::Array(groups) = groups else { return None };
    groups.iter().find_map(|g| {
        let pairs: Vec<(String, Option<String>)> = match g {
            Value::Array(flat) => flat.chunks(2).filter_map(|kv| Some((as_string(&kv[0])?, kv.get(1).and_then(as_string)))).collect(),
            Value::Map(map) => map.iter().filter_map(|(k, v)| Some((as_string(k)?, as_string(v)))).collect(),
            _ => return None,
        };
        let name = pairs.iter().find(|(k, _)| k == "name").and_then(|(_, v)| v.clone())?;
        if name != group {
            return None;
        }
        pairs.into_iter().find(|(k, _)| k == field).and_then(|(_, v)| v)
    })
}

pub fn done_mask(conn: &mut Connection, keys: &Keys, ids: &[String]) -> redis::RedisResult<Vec<bool>> {
    let mut mask = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(1000) {
        let part: Vec<bool> = redis::cmd("SMISMEMBER").arg(&keys.done).arg(chunk).query(conn)?;
        mask.extend(part);
    }
    Ok(mask)
}

/// For each id: done, or dead-lettered.
pub fn finished_mask(conn: &mut Connection, keys: &Keys, ids: &[String]) -> redis::RedisResult<Vec<bool>> {
    let mut mask = done_mask(conn, keys, ids)?;
    let dead: HashSet<String> = redis::cmd("HKEYS").arg(&keys.dead).query(conn)?;
    for (m, id) in mask.iter_mut().zip(ids) {
        *m |= dead.contains(id);
    }
    Ok(mask)
}

