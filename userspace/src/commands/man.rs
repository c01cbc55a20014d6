//! `flowmeter man`: the manual page, in roff, made from the same clap definition as
//! `--help`, so that the two never disagree. `cargo xtask install` writes it to
//! `share/man/man1/flowmeter.1`; `flowmeter man | man -l -` shows it without installing.
//!
//! One page for the whole program: the console's options, then one section per command
//! (`FLOWMETER LOG`, ...) with its synopsis, description and options, then the examples,
//! the files, the environment and the credits.

use std::io::{self, Write};

use anyhow::Context as _;
use clap::CommandFactory as _;
use clap_mangen::{
    Man,
    roff::{Roff, bold, roman},
};

use crate::cli::Cli;

/// Files the page lists: path, and what it is.
const FILES: &[(&str, &str)] = &[
    (
        "/etc/flowmeter/flowmeter.toml",
        "The configuration, read when it exists (--config PATH names another): a table per \
         command ([log], [top], [audit]) whose keys are that command's long options, and a \
         [verdict] table that extends the verdict rules. Options on the command line win.",
    ),
    (
        "/var/log/flowmeter/flowmeter.jsonl",
        "Where the service writes its JSON lines (the unit's --output).",
    ),
    (
        "/etc/systemd/system/flowmeter.service",
        "The systemd unit: flowmeter log as a service, with only the capabilities it needs.",
    ),
    (
        "/etc/logrotate.d/flowmeter",
        "Rotates the service's log and sends flowmeter SIGHUP to reopen it.",
    ),
];

/// Environment variables the page lists: name, and what it does.
const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "FLOWMETER_LOG",
        "Filter for flowmeter's own messages on standard error, in env_logger's syntax \
         (e.g. debug, or flowmeter::enrich=debug).",
    ),
    (
        "FLOWMETER_BPF_OBJECT",
        "Load the eBPF programs from this object file instead of the embedded one.",
    ),
];

const SEE_ALSO: &str = "systemctl(1), journalctl(1), logrotate(8), ss(8), bpftool(8)";

/// Writes the page to standard output.
pub fn run() -> anyhow::Result<()> {
    let page = render();
    let mut stdout = io::stdout().lock();
    match stdout
        .write_all(page.as_bytes())
        .and_then(|()| stdout.flush())
    {
        // `flowmeter man | head`: the reader has seen what it wanted.
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        result => result.context("cannot write the manual page to standard output"),
    }
}

/// The whole page, as roff source.
pub fn render() -> String {
    let mut cli = Cli::command().disable_help_subcommand(true);
    cli.build();
    let man = Man::new(cli.clone()).manual("User Commands");

    let mut page = Page::default();
    page.push(|w| man.render_title(w));
    page.push(|w| man.render_name_section(w));
    page.push(|w| man.render_synopsis_section(w));
    page.push(|w| man.render_description_section(w));
    page.push(|w| man.render_options_section(w));

    let commands: Vec<&clap::Command> = cli
        .get_subcommands()
        .filter(|command| !command.is_hide_set())
        .collect();
    let mut list = Roff::new();
    list.control("SH", ["COMMANDS"]);
    for command in &commands {
        list.control("TP", []);
        list.text([bold(format!("flowmeter {}", command.get_name()))]);
        if let Some(about) = command.get_about() {
            list.text([roman(about.to_string())]);
        }
    }
    page.roff(&list);

    for command in commands {
        let heading = format!("FLOWMETER {}", command.get_name().to_uppercase());
        let mut roff = Roff::new();
        roff.control("SH", [heading.as_str()]);
        page.roff(&roff);
        let man = Man::new(command.clone());
        page.push_demoted(|w| man.render_synopsis_section(w));
        page.push_demoted(|w| man.render_description_section(w));
        page.push_demoted(|w| man.render_options_section(w));
        if let Some(text) = command.get_after_long_help().or(command.get_after_help()) {
            page.roff(&after_help(&text.to_string(), "SS"));
        }
    }

    if let Some(text) = cli.get_after_long_help().or(cli.get_after_help()) {
        page.roff(&after_help(&text.to_string(), "SH"));
    }
    page.roff(&described_list("FILES", FILES));
    page.roff(&described_list("ENVIRONMENT", ENVIRONMENT));
    let mut see_also = Roff::new();
    see_also.control("SH", ["SEE ALSO"]).text([roman(SEE_ALSO)]);
    page.roff(&see_also);
    page.push(|w| man.render_version_section(w));
    page.text
}

/// The page being written. clap_mangen and roff start every piece with the same
/// two-line preamble (it defines the apostrophe); the page keeps only the first.
#[derive(Default)]
struct Page {
    text: String,
}

impl Page {
    fn push(&mut self, render: impl FnOnce(&mut dyn Write) -> io::Result<()>) {
        let mut piece = Vec::new();
        render(&mut piece).expect("writing to memory cannot fail");
        let piece = String::from_utf8(piece).expect("roff of UTF-8 text is UTF-8");
        let preamble = Roff::new().render();
        match piece.strip_prefix(&preamble) {
            Some(rest) if !self.text.is_empty() => self.text.push_str(rest),
            _ => self.text.push_str(&piece),
        }
    }

    /// A piece whose sections become subsections (`.SH OPTIONS` → `.SS Options`), to
    /// sit inside a command's section.
    fn push_demoted(&mut self, render: impl FnOnce(&mut dyn Write) -> io::Result<()>) {
        let start = self.text.len();
        self.push(render);
        let demoted: String = self.text[start..]
            .split_inclusive('\n')
            .map(|line| match line.strip_prefix(".SH ") {
                Some(heading) => format!(".SS {}", title_case(heading)),
                None => line.to_owned(),
            })
            .collect();
        self.text.replace_range(start.., &demoted);
    }

    fn roff(&mut self, roff: &Roff) {
        self.push(|w| roff.to_writer(w));
    }
}

/// `OPTIONS` → `Options`, `"SEE ALSO"` → `"See also"`.
fn title_case(heading: &str) -> String {
    let lower = heading.to_lowercase();
    let mut chars = lower.chars();
    let mut title = String::with_capacity(lower.len());
    if let Some(first) = chars.next() {
        if first == '"' {
            title.push(first);
            title.extend(chars.next().map(|c| c.to_ascii_uppercase()));
        } else {
            title.push(first.to_ascii_uppercase());
        }
    }
    title.extend(chars);
    title
}

/// A command's after-help text as sections (`macro` "SH") or subsections ("SS"): a
/// paragraph whose first line is a heading such as `Examples:` becomes a section of that
/// name with its lines kept as they are; other paragraphs are filled text under NOTES.
fn after_help(text: &str, macro_name: &str) -> Roff {
    let mut roff = Roff::new();
    let mut notes = Vec::new();
    for paragraph in text.split("\n\n") {
        let mut lines = paragraph.lines();
        let Some(first) = lines.next() else { continue };
        let heading = first.trim().strip_suffix(':').filter(|h| !h.contains(' '));
        match heading {
            Some(heading) => {
                let heading = match macro_name {
                    "SH" => heading.to_uppercase(),
                    _ => title_case(heading),
                };
                roff.control(macro_name, [heading.as_str()])
                    .control("nf", []);
                for line in lines {
                    roff.text([roman(line.strip_prefix("  ").unwrap_or(line))]);
                }
                roff.control("fi", []);
            }
            None => notes.push(paragraph.split_whitespace().collect::<Vec<_>>().join(" ")),
        }
    }
    if !notes.is_empty() {
        let heading = if macro_name == "SH" { "NOTES" } else { "Notes" };
        roff.control(macro_name, [heading]);
        for (i, note) in notes.into_iter().enumerate() {
            if i > 0 {
                roff.control("PP", []);
            }
            roff.text([roman(note)]);
        }
    }
    roff
}

/// A section of tagged paragraphs: the name in bold, then what it is.
fn described_list(heading: &str, items: &[(&str, &str)]) -> Roff {
    let mut roff = Roff::new();
    roff.control("SH", [heading]);
    for (name, what) in items {
        roff.control("TP", [])
            .text([bold(*name)])
            .text([roman(*what)]);
    }
    roff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_documents_every_command_and_the_credit() {
        let page = render();
        assert!(page.starts_with(".ie \\n(.g .ds Aq"), "{page}");
        assert_eq!(page.matches(".ds Aq").count(), 2, "one preamble");
        assert!(page.contains("\n.TH flowmeter 1 "), "{page}");
        for section in [
            "NAME", "SYNOPSIS", "OPTIONS", "COMMANDS", "FILES", "EXAMPLES",
        ] {
            assert!(page.contains(&format!("\n.SH {section}\n")), "{section}");
        }
        // The log command: its own section, its options, and `--iface` (roff escapes `-`).
        assert!(page.contains("\n.SH \"FLOWMETER LOG\"\n"), "{page}");
        assert!(page.contains("\\fBflowmeter log\\fR"), "{page}");
        assert!(page.contains("\\-\\-iface"), "{page}");
        assert!(page.contains("\\-\\-rotate\\-size"), "{page}");
        assert!(page.contains("\n.SS Options\n"), "{page}");
        // The credit the database's licence asks for.
        assert!(
            page.contains("IP Geolocation by DB\\-IP (https://db\\-ip.com), CC BY 4.0"),
            "{page}"
        );
        // Hidden commands (this one included) stay out.
        assert!(!page.contains("FLOWMETER MAN"), "{page}");
    }

    #[test]
    fn headings_are_title_cased() {
        assert_eq!(title_case("OPTIONS\n"), "Options\n");
        assert_eq!(title_case("\"SEE ALSO\"\n"), "\"See also\"\n");
    }

    #[test]
    fn after_help_splits_examples_from_notes() {
        let roff = after_help(
            "Examples:\n  a --b   does c\n\nCredit: someone,\n  somewhere.",
            "SH",
        )
        .to_roff();
        assert_eq!(
            roff,
            ".SH EXAMPLES\n.nf\na \\-\\-b   does c\n.fi\n.SH NOTES\nCredit: someone, somewhere.\n"
        );
    }
}
