//! `flowmeter log`: datapath → reader → JSON lines, until the duration ends or a
//! signal asks to stop. On stop the programs are detached first and the maps read
//! once more, so every packet counted is written.

use std::{
    thread,
    time::{Instant, SystemTime},
};

use anyhow::{Context as _, Result, anyhow};
use crossbeam_channel::{Receiver, after, bounded, never, select, tick};
use signal_hook::{
    consts::{SIGINT, SIGTERM},
    iterator::Signals,
};

use crate::{
    cli::LogArgs,
    datapath::{Datapath, Reader, interfaces},
    sinks::log::{LogSink, Output},
};

pub fn run(args: &LogArgs, verbose: bool) -> Result<()> {
    let stop = stop_signals()?;
    let interfaces = interfaces::resolve(&args.datapath.ifaces)?;
    let output = Output::parse(&args.output);
    let mut sink = LogSink::open(&output).map_err(|e| {
        anyhow!(
            "cannot open {} for the log ({e}); choose a writable file with --output, or - \
             for standard output",
            args.output
        )
    })?;

    let mut enricher = args.enrich.enricher()?;
    let options = args.datapath.options(verbose);
    let (mut datapath, maps) = Datapath::start(&interfaces, &options)?;
    let started = Instant::now();
    for attachment in datapath.attachments() {
        eprintln!(
            "flowmeter: {}: ingress {} ({}), egress tc",
            attachment.interface.name, attachment.ingress, attachment.reason
        );
    }
    let mut reader = Reader::new(maps, &interfaces, started);
    sink.write_start(
        SystemTime::now(),
        datapath.attachments(),
        args.interval,
        options.flow_capacity,
        &enricher.geo().description(),
    )
    .context("writing the log")?;

    let ticks = tick(args.interval);
    let deadline = args.duration.map(after).unwrap_or_else(never);
    loop {
        select! {
            recv(ticks) -> _ => {
                datapath.flush_kernel_log();
                let snapshot = reader.read(SystemTime::now(), Instant::now())?;
                let facts = enricher.enrich(&snapshot.flows, Instant::now());
                sink.write_snapshot(&snapshot, &facts).context("writing the log")?;
            }
            recv(stop) -> _ => break,
            recv(deadline) -> _ => break,
        }
    }
    datapath.detach();
    datapath.flush_kernel_log();
    let last = reader.read(SystemTime::now(), Instant::now())?;
    let facts = enricher.enrich(&last.flows, Instant::now());
    sink.write_snapshot(&last, &facts)
        .context("writing the log")?;
    Ok(())
}

/// A channel that receives once SIGINT or SIGTERM arrives.
fn stop_signals() -> Result<Receiver<()>> {
    let mut signals = Signals::new([SIGINT, SIGTERM]).context("installing signal handlers")?;
    let (sender, receiver) = bounded(1);
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if signals.forever().next().is_some() {
                let _ = sender.send(());
            }
        })
        .context("starting the signal thread")?;
    Ok(receiver)
}
