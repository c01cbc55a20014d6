//! The console's screen thread: folds each interval into the aggregator, keeps the
//! latest facts per flow, applies keys, and draws. The event loop waits on channels
//! only (intervals, keys, names, stop), so tests drive the same [`Console`] with
//! snapshots and keys of their own and no clock.

use std::{net::IpAddr, sync::Arc};

use anyhow::{Result, anyhow, bail};
use crossbeam_channel::{Receiver, never, select};
use ratatui::{Frame, Terminal, backend::Backend};

use super::{
    facts::FactsCache,
    flood::FloodWatch,
    keys::{Action, Key, reduce},
    render::render,
    resolver::Resolver,
    state::State,
    terminal::Input,
    view::{self, Names, Setup, View},
};
use crate::{
    enrich::{
        EnrichedSnapshot,
        coverage::{Coverage, Recent},
    },
    flow::{Aggregator, GroupKey},
};

/// What the metering thread sends the screen.
pub enum Update {
    /// One interval, its flows with their facts.
    Interval(EnrichedSnapshot),
    /// Metering stopped on this error.
    Failed(anyhow::Error),
}

/// The console's state and everything it shows, without a terminal.
pub struct Console {
    state: State,
    aggregator: Aggregator,
    facts: FactsCache,
    flood: FloodWatch,
    /// How much of the recent traffic has a process: the status line's figure.
    coverage: Recent,
    setup: Arc<Setup>,
    names: Names,
    resolver: Option<Resolver>,
    view: View,
}

impl Console {
    pub fn new(setup: Setup, state: State, resolver: Option<Resolver>) -> Self {
        Self::with_intervals(setup, state, resolver, [])
    }

    /// A console that has seen `intervals` already, refreshed once after them (so a
    /// selection in `state` stays on its line: `replay` rebuilds one per second shown).
    pub fn with_intervals(
        setup: Setup,
        state: State,
        resolver: Option<Resolver>,
        intervals: impl IntoIterator<Item = EnrichedSnapshot>,
    ) -> Self {
        let mut console = Self {
            state,
            aggregator: Aggregator::new(),
            facts: FactsCache::default(),
            flood: FloodWatch::default(),
            coverage: Recent::default(),
            setup: Arc::new(setup),
            names: Names::new(),
            resolver,
            view: View::default(),
        };
        for interval in intervals {
            console.absorb(interval);
        }
        console.refresh();
        console
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn view(&self) -> &View {
        &self.view
    }

    /// Adds one interval. While paused the numbers on screen stay; the aggregator still
    /// counts, so nothing is missing afterwards.
    pub fn ingest(&mut self, interval: EnrichedSnapshot) {
        self.absorb(interval);
        if !self.state.paused {
            self.refresh();
        }
    }

    /// Counts one interval, without drawing it.
    fn absorb(&mut self, interval: EnrichedSnapshot) {
        self.aggregator.ingest(interval.snapshot());
        self.flood.observe(&interval, self.aggregator.elapsed());
        self.coverage.push(Coverage::of(&interval));
        self.facts.update(
            interval.into_flows(),
            self.aggregator.elapsed(),
            self.aggregator.flow_count(),
        );
    }

    pub fn press(&mut self, key: Key) -> Action {
        let rows = self.view.keys();
        let action = reduce(&mut self.state, key, &rows);
        if action == Action::Refresh {
            self.refresh();
        }
        action
    }

    /// Names from the resolver; the lines show them from the next refresh (at once
    /// unless paused).
    pub fn names_arrived(&mut self, answers: impl IntoIterator<Item = (IpAddr, Option<String>)>) {
        let mut named = false;
        for (ip, name) in answers {
            let name = match &mut self.resolver {
                Some(resolver) => resolver.record(ip, name).map(str::to_owned),
                None => name,
            };
            if let Some(name) = name {
                self.names.insert(ip, name);
                named = true;
            }
        }
        if named && !self.state.paused {
            self.refresh();
        }
    }

    pub fn draw(&self, frame: &mut Frame) {
        render(&self.state, &self.view, frame);
    }

    fn refresh(&mut self) {
        self.view = view::build(
            &self.aggregator,
            &self.facts,
            &self.state,
            &self.names,
            &self.setup,
        );
        self.view.flood = self.flood.banner();
        self.view.coverage = self.coverage.sum();
        // While details are open they stay on their line, even when it has gone.
        if !self.state.details {
            self.state.follow(&self.view.keys());
        }
        if let Some(resolver) = &mut self.resolver {
            for row in &self.view.rows {
                match row.key {
                    GroupKey::RemoteHost(ip) | GroupKey::HostPair { remote: ip, .. } => {
                        resolver.want(ip)
                    }
                    _ => {}
                }
            }
        }
    }

    fn answers(&self) -> Receiver<(IpAddr, Option<String>)> {
        self.resolver
            .as_ref()
            .map_or_else(never, |resolver| resolver.answers().clone())
    }
}

/// Where the screen's events come from.
pub struct Inputs {
    pub updates: Receiver<Update>,
    pub terminal: Receiver<Input>,
    /// SIGINT or SIGTERM.
    pub stop: Receiver<()>,
}

/// Draws, then waits for the next event, until a quit key, a stop signal, or an error
/// from metering.
pub fn run<B: Backend>(
    terminal: &mut Terminal<B>,
    console: &mut Console,
    inputs: &Inputs,
) -> Result<()> {
    loop {
        terminal
            .draw(|frame| console.draw(frame))
            .map_err(|e| anyhow!("drawing the screen: {e}"))?;
        let answers = console.answers();
        select! {
            recv(inputs.updates) -> update => match update {
                Ok(Update::Interval(interval)) => console.ingest(interval),
                Ok(Update::Failed(error)) => return Err(error),
                Err(_) => bail!("the metering thread stopped"),
            },
            recv(inputs.terminal) -> input => match input {
                Ok(Input::Key(key)) => {
                    if console.press(key) == Action::Quit {
                        return Ok(());
                    }
                }
                Ok(Input::Resize) => {}
                // The terminal went away: nobody is left to look.
                Err(_) => return Ok(()),
            },
            recv(inputs.stop) -> _ => return Ok(()),
            recv(answers) -> answer => {
                // Every answer waiting, for one refresh.
                let waiting: Vec<_> = answer.into_iter().chain(answers.try_iter()).collect();
                console.names_arrived(waiting);
            }
        }
    }
}
