//! Map layouts across ramd versions and policies.
//!
//! Pinned maps outlive ramd, and aya reuses a pinned map without comparing
//! it with the object's definition. A new ramd build whose map changed, or
//! a policy that resizes a map, must not run against the old map. So before
//! loading, ramd compares every pinned map with what the object (and the
//! policy's `[limits]`) asks for; a map that differs is set aside as
//! `previous-maps/<name>` and created afresh by the load. Its entries are then
//! carried over where the key and value sizes are unchanged (a resize, or a
//! build that changed another map). Where they changed, nothing is guessed:
//! rule maps are refilled from the policy anyway, and learned addresses are
//! learned again from the next answers (until then they are denied: closed,
//! not open). The old programs keep using the old maps until the new ones
//! replace them, then the `previous-maps` pins go.

use std::{
    collections::BTreeMap,
    os::fd::AsFd,
    path::{Path, PathBuf},
};

use aya::maps::MapData;
use serde::Serialize;

use crate::{
    bpf_calls,
    maps::{MapsError, Result},
    paths::Paths,
};

const BPF_MAP_TYPE_PERF_EVENT_ARRAY: u32 = aya_obj::generated::bpf_map_type::BPF_MAP_TYPE_PERF_EVENT_ARRAY as u32;
const BPF_MAP_TYPE_PERCPU_HASH: u32 = aya_obj::generated::bpf_map_type::BPF_MAP_TYPE_PERCPU_HASH as u32;
const BPF_MAP_TYPE_PERCPU_ARRAY: u32 = aya_obj::generated::bpf_map_type::BPF_MAP_TYPE_PERCPU_ARRAY as u32;
const BPF_MAP_TYPE_LPM_TRIE: u32 = aya_obj::generated::bpf_map_type::BPF_MAP_TYPE_LPM_TRIE as u32;
const BPF_MAP_TYPE_RINGBUF: u32 = aya_obj::generated::bpf_map_type::BPF_MAP_TYPE_RINGBUF as u32;

/// What a map is, as far as compatibility goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Layout {
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    /// None where the loader sizes the map itself (perf event arrays get
    /// one slot per CPU).
    pub max_entries: Option<u32>,
}

impl Layout {
    fn matches(&self, pinned: &Layout) -> bool {
        self.map_type == pinned.map_type
            && self.key_size == pinned.key_size
            && self.value_size == pinned.value_size
            && (self.max_entries.is_none() || self.max_entries == pinned.max_entries)
    }
}

/// The layout the object asks for, for each of `names`, with `sizes`
/// overriding max_entries (the policy's limits).
pub fn wanted(object: &[u8], names: &[&str], sizes: &[(&str, u32)]) -> Result<BTreeMap<String, Layout>> {
    let obj = aya_obj::Object::parse(object).map_err(|e| MapsError::Sys {
        what: "parsing the eBPF object".into(),
        cause: std::io::Error::other(e.to_string()),
    })?;
    let mut out = BTreeMap::new();
    for name in names {
        let def = obj.maps.get(*name).ok_or_else(|| MapsError::MissingMap { map: name.to_string() })?;
        let sized = sizes.iter().find(|(n, _)| n == name).map(|(_, size)| *size);
        let max_entries = match def.map_type() {
            BPF_MAP_TYPE_PERF_EVENT_ARRAY => None,
            _ => Some(sized.unwrap_or(def.max_entries())),
        };
        let layout =
            Layout { map_type: def.map_type(), key_size: def.key_size(), value_size: def.value_size(), max_entries };
        out.insert(name.to_string(), layout);
    }
    Ok(out)
}

fn pinned_layout(path: &Path) -> Option<(MapData, Layout)> {
    let data = MapData::from_pin(path).ok()?;
    let info = data.info().ok()?;
    let layout = Layout {
        map_type: info.map_type().ok()? as u32,
        key_size: info.key_size(),
        value_size: info.value_size(),
        max_entries: Some(info.max_entries()),
    };
    Some((data, layout))
}

/// A pinned map that differs from what the object asks for.
#[derive(Clone, Debug, Serialize)]
pub struct Mismatch {
    pub map: String,
    pub pinned: Layout,
    pub wanted: Layout,
}

fn previous_pin(paths: &Paths, map: &str) -> PathBuf {
    paths.previous_maps_dir().join(map)
}

/// Moves every pinned map that differs from `wanted` to
/// `previous-maps/<name>`, so the load creates it afresh. A `previous-maps` pin left
/// by an interrupted start is kept (its entries are carried over later).
pub fn set_aside_mismatched(paths: &Paths, wanted: &BTreeMap<String, Layout>) -> Result<Vec<Mismatch>> {
    let mut out = Vec::new();
    for (name, layout) in wanted {
        let pin = paths.map_pin(name);
        let Some((_, pinned)) = pinned_layout(&pin) else { continue };
        if layout.matches(&pinned) {
            continue;
        }
        crate::sys::create_private_dir(&paths.previous_maps_dir())?;
        let previous = previous_pin(paths, name);
        if previous.exists() {
            // An older set-aside map: the programs that used it were
            // replaced at the end of that start, or will be now.
            std::fs::remove_file(&previous).map_err(|e| MapsError::io(&previous, e))?;
        }
        bpf_calls::move_pin(&pin, &previous)?;
        out.push(Mismatch { map: name.clone(), pinned, wanted: *layout });
    }
    Ok(out)
}

/// What carrying one map's entries over did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CarryOver {
    pub map: String,
    pub copied: u64,
    /// Entries that did not fit (the new map is smaller) or whose layout
    /// changed.
    pub dropped: u64,
    /// Entries left behind on purpose (revoked meanwhile).
    pub skipped: u64,
}

/// Copies the entries of every `previous-maps/<name>` map into `<name>` where
/// key and value sizes are unchanged, but for those `skip(name, key)`
/// refuses. Tries and event maps are skipped (rules are rewritten from the
/// policy; events are not state).
pub fn carry_over(
    paths: &Paths,
    wanted: &BTreeMap<String, Layout>,
    skip: &dyn Fn(&str, &[u8]) -> bool,
) -> Result<Vec<CarryOver>> {
    let mut out = Vec::new();
    for (name, layout) in wanted {
        let previous = previous_pin(paths, name);
        let Some((old, old_layout)) = pinned_layout(&previous) else { continue };
        if matches!(layout.map_type, BPF_MAP_TYPE_LPM_TRIE | BPF_MAP_TYPE_RINGBUF | BPF_MAP_TYPE_PERF_EVENT_ARRAY) {
            continue;
        }
        let new = MapData::from_pin(paths.map_pin(name)).map_err(|e| MapsError::map(name, e))?;
        let mut report = CarryOver { map: name.clone(), ..CarryOver::default() };
        let same_shape = old_layout.map_type == layout.map_type
            && old_layout.key_size == layout.key_size
            && old_layout.value_size == layout.value_size;
        copy_entries(&old, &new, &old_layout, same_shape, &|key| skip(name, key), &mut report)
            .map_err(|e| MapsError::Sys { what: format!("carrying map {name} over"), cause: e })?;
        out.push(report);
    }
    Ok(out)
}

fn copy_entries(
    old: &MapData,
    new: &MapData,
    layout: &Layout,
    same_shape: bool,
    skip: &dyn Fn(&[u8]) -> bool,
    report: &mut CarryOver,
) -> std::io::Result<()> {
    let per_cpu = matches!(layout.map_type, BPF_MAP_TYPE_PERCPU_ARRAY | BPF_MAP_TYPE_PERCPU_HASH);
    let cpus = if per_cpu { aya::util::nr_cpus().map_err(|(_, e)| e)? } else { 1 };
    // Per-CPU values come as one 8-byte-aligned slot per possible CPU.
    let value_len =
        if per_cpu { (layout.value_size as usize).div_ceil(8) * 8 * cpus } else { layout.value_size as usize };
    let (old_fd, new_fd) = (old.fd().as_fd(), new.fd().as_fd());
    let mut key = vec![0u8; layout.key_size as usize];
    let mut next = vec![0u8; layout.key_size as usize];
    let mut value = vec![0u8; value_len];
    let mut first = true;
    while bpf_calls::next_key(old_fd, (!first).then_some(key.as_slice()), &mut next)? {
        first = false;
        key.copy_from_slice(&next);
        if !same_shape {
            report.dropped += 1;
            continue;
        }
        if skip(&key) {
            report.skipped += 1;
            continue;
        }
        if !bpf_calls::lookup(old_fd, &key, &mut value)? {
            continue;
        }
        match bpf_calls::update(new_fd, &key, &value) {
            Ok(()) => report.copied += 1,
            // Full (E2BIG) or out of range (an array that shrank).
            Err(e) if matches!(e.raw_os_error(), Some(libc::E2BIG) | Some(libc::ENOSPC) | Some(libc::EINVAL)) => {
                report.dropped += 1
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Removes the `previous-maps` pins once no program of this ramd uses them.
pub fn remove_previous(paths: &Paths, wanted: &BTreeMap<String, Layout>) {
    for name in wanted.keys() {
        let previous = previous_pin(paths, name);
        if previous.exists() {
            if let Err(e) = std::fs::remove_file(&previous) {
                tracing::warn!(pin = %previous.display(), "cannot remove a replaced map: {e}");
            }
        }
    }
    let _ = std::fs::remove_dir(paths.previous_maps_dir());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_on_shape_and_size_unless_the_loader_sizes_the_map() {
        let hash = Layout { map_type: 1, key_size: 8, value_size: 24, max_entries: Some(65536) };
        assert!(hash.matches(&hash));
        assert!(!hash.matches(&Layout { max_entries: Some(1024), ..hash }));
        assert!(!hash.matches(&Layout { value_size: 32, ..hash }));
        assert!(!hash.matches(&Layout { key_size: 4, ..hash }));
        assert!(!hash.matches(&Layout { map_type: 5, ..hash }));
        let perf = Layout { map_type: BPF_MAP_TYPE_PERF_EVENT_ARRAY, key_size: 4, value_size: 4, max_entries: None };
        assert!(perf.matches(&Layout { max_entries: Some(2), ..perf }));
    }
}
