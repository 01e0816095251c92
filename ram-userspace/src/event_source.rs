//! Reading the kernel's events: from the ring buffer, or from the perf event
//! array (one buffer per CPU) where the object for kernels before 5.8 is in
//! use. Reader tasks feed one bounded channel, so the daemon's loop reads
//! records the same way on either path; when ramd falls behind, the
//! kernel's buffer fills and the kernel counts what it could not send
//! (`events_lost`) — the kernel path never waits for ramd.

use aya::maps::{MapData, PerfEventArray, RingBuf};
use tokio::{io::unix::AsyncFd, sync::mpsc};
use tracing::{debug, warn};

use crate::{
    features::EventsPath,
    loader::events_map,
    maps::{MapsError, Result},
    paths::Paths,
};

/// Records waiting for the daemon before the readers stop reading.
const CHANNEL_RECORDS: usize = 4096;
/// Pages per CPU buffer on the perf path: 256 KiB with 4 KiB pages, room
/// for about 240 DNS events per CPU.
const PERF_PAGES: usize = 64;

/// Starts the reader tasks (on the current tokio runtime) for the event map
/// of `events`; each raw record arrives on the returned channel.
pub fn start(paths: &Paths, events: EventsPath) -> Result<mpsc::Receiver<Vec<u8>>> {
    let (tx, rx) = mpsc::channel(CHANNEL_RECORDS);
    let map_name = events_map(events);
    let pin = paths.map_pin(map_name);
    let map = crate::maps::open(paths, map_name)?;
    let register_error = |e: std::io::Error| MapsError::io(&pin, e);
    match events {
        EventsPath::RingBuffer => {
            let ring = RingBuf::try_from(map).map_err(|e| MapsError::map(map_name, e))?;
            // SAFETY: the ring buffer owns its map fd and the AsyncFd owns
            // the ring buffer, so the fd stays open and unchanged while
            // registered.
            let ring =
                unsafe { AsyncFd::register(ring) }.map_err(|e| register_error(std::io::Error::other(e.to_string())))?;
            tokio::spawn(read_ring(ring, tx));
        }
        EventsPath::PerfEventArray => {
            let mut array = PerfEventArray::try_from(map).map_err(|e| MapsError::map(map_name, e))?;
            let cpus = aya::util::online_cpus()
                .map_err(|(what, cause)| MapsError::Sys { what: format!("reading {what}"), cause })?;
            for cpu in cpus {
                let buffer = array.open(cpu, Some(PERF_PAGES)).map_err(|e| MapsError::Sys {
                    what: format!("opening the perf buffer of CPU {cpu}"),
                    cause: std::io::Error::other(e.to_string()),
                })?;
                // SAFETY: as above; the buffer owns its perf event fd.
                let buffer = unsafe { AsyncFd::register(buffer) }
                    .map_err(|e| register_error(std::io::Error::other(e.to_string())))?;
                tokio::spawn(read_perf(buffer, cpu, tx.clone()));
            }
        }
    }
    Ok(rx)
}

async fn read_ring(mut ring: AsyncFd<RingBuf<MapData>>, tx: mpsc::Sender<Vec<u8>>) {
    loop {
        let mut guard = match ring.readable_mut().await {
            Ok(guard) => guard,
            Err(e) => {
                warn!("ring buffer: {e}; no more events will be read");
                return;
            }
        };
        let mut records = Vec::new();
        while let Some(item) = guard.get_inner_mut().next() {
            records.push(item.to_vec());
        }
        guard.clear_ready();
        for record in records {
            if tx.send(record).await.is_err() {
                return;
            }
        }
    }
}

async fn read_perf(
    mut buffer: AsyncFd<aya::maps::perf::PerfEventArrayBuffer<MapData>>,
    cpu: u32,
    tx: mpsc::Sender<Vec<u8>>,
) {
    loop {
        let mut guard = match buffer.readable_mut().await {
            Ok(guard) => guard,
            Err(e) => {
                warn!(cpu, "perf buffer: {e}; no more events from this CPU");
                return;
            }
        };
        let mut records = Vec::new();
        guard.get_inner_mut().for_each(|event| match event {
            aya::maps::perf::PerfEvent::Sample { head, tail } => {
                let mut record = Vec::with_capacity(head.len() + tail.len());
                record.extend_from_slice(head);
                record.extend_from_slice(tail);
                records.push(record);
            }
            // The kernel counted these in `events_lost` when the output
            // helper failed; ramd reports that counter.
            aya::maps::perf::PerfEvent::Lost { count } => debug!(cpu, count, "perf buffer lost records"),
        });
        guard.clear_ready();
        for record in records {
            if tx.send(record).await.is_err() {
                return;
            }
        }
    }
}
