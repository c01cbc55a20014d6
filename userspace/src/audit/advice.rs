//! What to do about each kind of finding: the runbook's steps (seed 004), worded once.
//!
//! A host with a sign of compromise is treated the same way whatever the sign: remove
//! what was planted, kill what it started, back up the data, reinstall, then harden.
//! The hardening steps are also advice of their own, for hosts that are merely weak.

/// The runbook's hardening, said in full at the end of every compromise advice.
macro_rules! harden {
    () => {
        "harden it: strong random passwords of 12-16 characters mixing upper and lower \
         case, digits and symbols; remove unused users; move sshd off port 22; open only \
         the ports the service needs; never expose databases to the public network; \
         install host protection with real-time alerts for unusual logins."
    };
}

/// After the first step of a compromise advice.
macro_rules! reinstall {
    () => {
        concat!(
            "If you did not set this up, the host has likely been compromised: back up the \
             data (take a snapshot), reinstall the system, then ",
            harden!()
        )
    };
}

pub const REMOVE_ENTRY: &str = concat!(
    "Remove the entry unless you added it yourself, and kill any process it started. ",
    reinstall!()
);

pub const REVIEW_ENTRY: &str = "Check that you added this entry yourself and know what \
                                it starts; remove it otherwise.";

pub const RC_LOCAL_EXECUTABLE: &str = "rc.local runs at every boot: read it and keep only \
                                       commands you added yourself.";

pub const SERVICE_ACCOUNT_CRON: &str = concat!(
    "Service accounts (web servers, databases) should not have crontabs: a planted one \
     restarts malware after every kill. Remove it unless you made it (crontab -r -u \
     USER). ",
    reinstall!()
);

pub const LD_PRELOAD: &str = concat!(
    "Remove the line (or the file) unless you added the library yourself: every program \
     loads it, and a planted one hides files and processes. ",
    reinstall!()
);

pub const HUGE_PAGES: &str = concat!(
    "Unless your own service (a database, a JVM, DPDK) uses huge pages, set \
     vm.nr_hugepages to 0 (sysctl and /etc/sysctl.conf) and find the process that \
     reserved them: miners do. Kill it. ",
    reinstall!()
);

pub const HUGE_PAGES_KNOWN: &str = "Huge pages are reserved and only known users (databases, \
                                    JVMs, DPDK) map them: nothing to do if you set this up.";

pub const KILL_PROCESS: &str = concat!(
    "Kill the process (kill -9 PID), then find and remove what starts it (rc.local, \
     cron, systemd units). ",
    reinstall!()
);

pub const BUSY_PROCESS: &str = concat!(
    "Check what this program is: if it is not yours (a miner often is), kill it and \
     remove what starts it. ",
    reinstall!()
);

pub const SUSPICIOUS_TRAFFIC: &str = concat!(
    "Check the process and the reasons: if it is not yours, kill it and remove what \
     starts it. ",
    reinstall!()
);

pub const SSH_PORT: &str = "Move sshd off port 22 to a port between 1024 and 65535 (Port in \
                            /etc/ssh/sshd_config), allow it in the security group, restart \
                            sshd, and close 22.";

pub const SSH_PASSWORDS: &str = "Log in with keys and set PasswordAuthentication no; where \
                                 passwords must stay, make them strong random ones of 12-16 \
                                 characters mixing upper and lower case, digits and symbols.";

pub const SSH_ROOT_PASSWORD: &str = "Set PermitRootLogin no (or prohibit-password) and log \
                                     in as a normal user with a key; give root a strong \
                                     random password of 12-16 characters.";

pub const SSH_ROOT_KEY: &str = "Prefer PermitRootLogin prohibit-password or no, and log in \
                                as a normal user.";

pub const SSH_EMPTY: &str = "Set PermitEmptyPasswords no, and give every login account a \
                             strong password or lock it (passwd -l).";

pub const EMPTY_PASSWORD: &str = "Set a strong random password of 12-16 characters mixing \
                                  upper and lower case, digits and symbols (passwd USER), or \
                                  lock the account (passwd -l USER); remove it if nobody \
                                  uses it.";

pub const WEAK_HASH: &str = "Set a new strong password (12-16 characters, mixed) so it is \
                             stored with a modern hash (yescrypt or SHA-512), or lock the \
                             account.";

pub const EXTRA_ROOT: &str = concat!(
    "An account with uid 0 besides root is a backdoor unless you made it: remove it \
     (userdel). ",
    reinstall!()
);

pub const UNUSED_USER: &str = "Remove users nobody uses (userdel -r USER), or lock them.";

pub const RECENT_KEYS: &str = "Check every key in the file and remove those you did not \
                               add; if one was planted, treat the host as compromised.";

pub const EXPOSED_DATABASE: &str = "Never expose a database to the public network: bind it \
                                    to 127.0.0.1 or a private address, or allow only the \
                                    hosts that need it in the security group and the \
                                    firewall.";

pub const OPEN_PORTS: &str = "Open only the ports the service needs in the security group \
                              and the firewall.";

pub const UNREADABLE: &str = "Run the audit as root (sudo) to read it.";
