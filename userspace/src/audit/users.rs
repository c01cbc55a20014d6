//! The account database: `/etc/passwd` and `/etc/shadow`, as lines with their numbers
//! (the evidence of account findings).

use super::{finding::Findings, root::Root};

/// Shells that refuse an interactive login.
const NO_LOGIN_SHELLS: &[&str] = &["nologin", "false", "sync", "shutdown", "halt", "git-shell"];

/// One line of `/etc/passwd`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    /// The passwd password field: `x` when the hash is in `/etc/shadow`.
    pub password: String,
    pub uid: u32,
    pub home: String,
    pub shell: String,
    /// Line number in `/etc/passwd`, and the line.
    pub line: usize,
    pub text: String,
}

impl Account {
    /// `/etc/passwd:LINE: the line`, for evidence: a password kept in it (not `x`) is
    /// masked.
    pub fn evidence(&self) -> String {
        let shown = if self.password.is_empty() || self.password == "x" {
            self.text.clone()
        } else {
            let mut fields: Vec<&str> = self.text.split(':').collect();
            fields[1] = "(hidden)";
            fields.join(":")
        };
        format!("{}:{}: {shown}", Users::PASSWD, self.line)
    }

    /// Whether the shell lets the user log in (an empty shell is `/bin/sh`).
    pub fn can_log_in(&self) -> bool {
        let name = self.shell.rsplit('/').next().unwrap_or("");
        !NO_LOGIN_SHELLS.contains(&name)
    }
}

/// The accounts of `/etc/passwd`.
#[derive(Clone, Debug, Default)]
pub struct Users {
    pub accounts: Vec<Account>,
}

impl Users {
    pub const PASSWD: &str = "/etc/passwd";

    /// `None` if `/etc/passwd` is missing or unreadable (then said in `out`).
    pub fn read(root: &Root, out: &mut Findings) -> Option<Self> {
        let text = root.read(Self::PASSWD, out)?;
        Some(Self::parse(&text))
    }

    pub fn parse(text: &str) -> Self {
        let accounts = text
            .lines()
            .enumerate()
            .filter_map(|(index, line)| {
                let fields: Vec<&str> = line.split(':').collect();
                let [name, password, uid, _gid, _gecos, home, shell] = fields[..] else {
                    return None;
                };
                Some(Account {
                    name: name.to_owned(),
                    password: password.to_owned(),
                    uid: uid.parse().ok()?,
                    home: home.to_owned(),
                    shell: shell.to_owned(),
                    line: index + 1,
                    text: line.to_owned(),
                })
            })
            .collect();
        Self { accounts }
    }

    pub fn get(&self, name: &str) -> Option<&Account> {
        self.accounts.iter().find(|account| account.name == name)
    }
}

/// One line of `/etc/shadow`: the user and the password hash field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shadow {
    pub name: String,
    pub hash: String,
    pub line: usize,
}

impl Shadow {
    pub const PATH: &str = "/etc/shadow";

    /// `None` if `/etc/shadow` is missing or unreadable (then said in `out`).
    pub fn read(root: &Root, out: &mut Findings) -> Option<Vec<Self>> {
        let text = root.read(Self::PATH, out)?;
        Some(Self::parse(&text))
    }

    pub fn parse(text: &str) -> Vec<Self> {
        text.lines()
            .enumerate()
            .filter_map(|(index, line)| {
                let mut fields = line.split(':');
                let name = fields.next().filter(|name| !name.is_empty())?;
                let hash = fields.next()?;
                Some(Self {
                    name: name.to_owned(),
                    hash: hash.to_owned(),
                    line: index + 1,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lines_parse_with_their_numbers() {
        let users = Users::parse(
            "root:x:0:0:root:/root:/bin/bash\n# comment\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\nbroken\nsh:x:1001:1001::/home/sh:\n",
        );
        let names: Vec<(&str, usize, bool)> = users
            .accounts
            .iter()
            .map(|a| (a.name.as_str(), a.line, a.can_log_in()))
            .collect();
        assert_eq!(
            names,
            [("root", 1, true), ("www-data", 3, false), ("sh", 5, true)]
        );
        assert_eq!(users.get("www-data").unwrap().home, "/var/www");
        let clear = Users::parse("u:secret:1:1::/:/bin/sh\n");
        assert_eq!(
            clear.accounts[0].evidence(),
            "/etc/passwd:1: u:(hidden):1:1::/:/bin/sh"
        );
    }

    #[test]
    fn shadow_lines_keep_the_hash_field() {
        let entries = Shadow::parse("root:*:19000:0:99999:7:::\nguest::19000::::::\n\n");
        assert_eq!(
            entries,
            [
                Shadow {
                    name: "root".into(),
                    hash: "*".into(),
                    line: 1
                },
                Shadow {
                    name: "guest".into(),
                    hash: String::new(),
                    line: 2
                },
            ]
        );
    }
}
