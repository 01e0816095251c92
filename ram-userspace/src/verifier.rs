//! How many instructions the verifier processed per program, on kernels that
//! do not report it (bpf_prog_info.verified_insns is 5.16+).
//!
//! aya keeps the verifier log only when a load fails, so each program is
//! loaded a second time here, from the same object with the same maps (found
//! through the loaded program's map ids), asking for the verifier's
//! statistics. The second copy is closed at once; it never runs.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    os::fd::{AsFd, AsRawFd},
};

use aya::{maps::MapData, Ebpf};
use ram_common::maps::{PROGRAMS, PROG_CGROUP_MKDIR, PROG_CGROUP_RMDIR};

use crate::{
    features::{prog_load_with_btf, ProgBtf, BPF_LOG_STATS},
    loader::{LoadError, Result},
};

/// (program type, expected attach type) of each program.
fn program_type(name: &str) -> Option<(u32, u32)> {
    crate::programs::find(name).map(|spec| (spec.prog_type as u32, spec.attach_type as u32))
}

/// "processed 233929 insns (limit 1000000) ..." → 233929.
pub fn parse_processed(log: &str) -> Option<u32> {
    let rest = &log[log.rfind("processed ")? + "processed ".len()..];
    rest.split_whitespace().next()?.parse().ok()
}

fn obj_error(e: impl std::fmt::Display) -> LoadError {
    LoadError::Measure { cause: e.to_string() }
}

/// Functions of the container watch (see `loader::ContainerWatch`).
const WATCH_FUNCTIONS: [&str; 3] = [PROG_CGROUP_MKDIR, PROG_CGROUP_RMDIR, "ram_match_pattern"];

/// Loads a statistics-only copy of every program of `ebpf` (loaded from
/// `object`) and returns the instructions the verifier processed for each.
pub fn processed_insns(ebpf: &Ebpf, object: &[u8]) -> Result<BTreeMap<String, u32>> {
    let mut maps: HashMap<String, MapData> = HashMap::new();
    for name in PROGRAMS {
        let Some(program) = ebpf.program(name) else {
            continue;
        };
        let info = program.info().map_err(|e| LoadError::Program { program: name.into(), cause: Box::new(e) })?;
        let ids = info.map_ids().map_err(|e| LoadError::Program { program: name.into(), cause: Box::new(e) })?;
        for id in ids.unwrap_or_default() {
            let data = MapData::from_id(id).map_err(|e| LoadError::MapById { cause: Box::new(e) })?;
            let map_name = data
                .info()
                .map_err(|e| LoadError::MapById { cause: Box::new(e) })?
                .name_as_str()
                .unwrap_or_default()
                .to_string();
            maps.insert(map_name, data);
        }
    }
    let mut obj = aya_obj::Object::parse(object).map_err(obj_error)?;
    // Only the per-scope programs are measured: the container watch's
    // programs (and the global function only they call) use maps no
    // per-scope program names, which the relocation below would not find.
    obj.programs.retain(|name, _| PROGRAMS.contains(&name.as_str()));
    obj.functions.retain(|_, f| !WATCH_FUNCTIONS.contains(&f.name.as_str()));
    let text_sections: HashSet<usize> = obj.functions.keys().map(|(section, _)| *section).collect();
    let defs: Vec<(String, i32, aya_obj::Map)> = obj
        .maps
        .iter()
        .filter_map(|(name, def)| {
            // The kernel keeps the first 15 bytes of a map's name.
            let kernel_name = &name[..name.len().min(15)];
            maps.get(kernel_name).map(|d| (name.clone(), d.fd().as_fd().as_raw_fd(), def.clone()))
        })
        .collect();
    obj.relocate_maps(defs.iter().map(|(n, fd, def)| (n.as_str(), *fd, def)), &text_sections).map_err(obj_error)?;
    obj.relocate_calls(&text_sections).map_err(obj_error)?;

    let mut out = BTreeMap::new();
    // For developers: RAM_VERIFIER_LOG=DIR writes each program's full log.
    let log_dir = std::env::var_os("RAM_VERIFIER_LOG").map(std::path::PathBuf::from);
    let (log_size, level) = if log_dir.is_some() { (1 << 29, 2 | BPF_LOG_STATS) } else { (1 << 16, BPF_LOG_STATS) };
    let mut log = vec![0u8; log_size];
    for name in PROGRAMS {
        let (Some(program), Some((prog_type, attach_type))) = (obj.programs.get(name), program_type(name)) else {
            continue;
        };
        let Some(function) = obj.functions.get(&program.function_key()) else {
            continue;
        };
        log.fill(0);
        let insns = &function.instructions;
        // The BTF the real load used (its global functions are checked on
        // their own there; without it they would be checked inline, at
        // another cost).
        let btf = ebpf.program(name).and_then(|p| p.info().ok()).and_then(|info| info.btf_id()).and_then(btf_fd);
        let records: Vec<u8> = function
            .func_info
            .func_info
            .iter()
            .flat_map(|r| r.insn_off.to_ne_bytes().into_iter().chain(r.type_id.to_ne_bytes()))
            .collect();
        let prog_btf = btf.as_ref().map(|fd| ProgBtf {
            btf: fd.as_fd(),
            func_info: &records,
            func_info_rec_size: function.func_info_rec_size as u32,
        });
        let loaded = prog_load_with_btf(prog_type, attach_type, insns, Some((&mut log, level)), prog_btf);
        let text = String::from_utf8_lossy(&log[..log.iter().position(|b| *b == 0).unwrap_or(log.len())]).into_owned();
        if let Some(dir) = &log_dir {
            let _ = std::fs::write(dir.join(format!("{name}.log")), &text);
        }
        match (loaded, parse_processed(&text)) {
            (Ok(_fd), Some(count)) => {
                out.insert(name.to_string(), count);
            }
            (Ok(_), None) => tracing::debug!(program = name, "no statistics in the verifier log"),
            (Err(e), _) => tracing::debug!(program = name, "statistics load failed: {e}"),
        }
    }
    Ok(out)
}

/// A descriptor of the loaded BTF object `id` (BPF_BTF_GET_FD_BY_ID).
fn btf_fd(id: u32) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    const BPF_BTF_GET_FD_BY_ID: libc::c_long = aya_obj::generated::bpf_cmd::BPF_BTF_GET_FD_BY_ID as libc::c_long;
    let attr = [id, 0, 0, 0];
    // SAFETY: a live attribute (the BTF id and zero padding), numbers only.
    let fd = unsafe { crate::sys::bpf(BPF_BTF_GET_FD_BY_ID, attr.as_ptr() as *const _, std::mem::size_of_val(&attr)) };
    // SAFETY: a descriptor the kernel just returned to us.
    (fd >= 0).then(|| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_processed_count() {
        let log = "verification time 98973 usec\nstack depth 264+0\nprocessed 233929 insns (limit 1000000) max_states_per_insn 4";
        assert_eq!(parse_processed(log), Some(233929));
        assert_eq!(parse_processed("nothing here"), None);
    }
}
