//! Network interfaces to meter: resolving names, and the default set.

use std::{ffi::CString, fs, path::Path};

use super::Error;

/// An interface as the kernel names and numbers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub ifindex: u32,
}

const IFF_UP: u32 = 0x1;
const IFF_LOOPBACK: u32 = 0x8;

/// The interfaces named on the command line, or every up, non-loopback one.
pub fn resolve(names: &[String]) -> Result<Vec<Interface>, Error> {
    let names = if names.is_empty() {
        default_names()?
    } else {
        names.to_vec()
    };
    let mut interfaces: Vec<Interface> = Vec::with_capacity(names.len());
    for name in names {
        if interfaces.iter().any(|known| known.name == name) {
            continue;
        }
        let ifindex = ifindex_of(&name).ok_or_else(|| Error::UnknownInterface(name.clone()))?;
        interfaces.push(Interface { name, ifindex });
    }
    Ok(interfaces)
}

/// The kernel's index of `name`, or `None` if there is no such interface.
pub fn ifindex_of(name: &str) -> Option<u32> {
    let c_name = CString::new(name).ok()?;
    // SAFETY: c_name is a valid NUL-terminated string for the duration of the call.
    let ifindex = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
    (ifindex != 0).then_some(ifindex)
}

fn default_names() -> Result<Vec<String>, Error> {
    let sys = Path::new("/sys/class/net");
    let entries = fs::read_dir(sys).map_err(|e| Error::Io("listing /sys/class/net".into(), e))?;
    let mut names: Vec<String> = entries
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| {
            let flags = fs::read_to_string(sys.join(name).join("flags")).unwrap_or_default();
            let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap_or(0);
            flags & IFF_UP != 0 && flags & IFF_LOOPBACK == 0
        })
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(Error::NoInterfaces);
    }
    Ok(names)
}
