//! Users and groups read from `/etc/passwd` and `/etc/group` directly: the
//! static release binary has no NSS (glibc's `getpwnam` there would need the
//! shared libraries of the very glibc it was linked with), and medic needs
//! only local accounts (the control socket's owner and group, doctor's labels).

/// One account: a user (`/etc/passwd`) or a group (`/etc/group`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The name (`medic`, `docker`).
    pub name: String,
    /// The uid or gid.
    pub id: u32,
}

/// The user called `name`, from `/etc/passwd`.
pub fn user_by_name(name: &str) -> std::io::Result<Option<Account>> {
    Ok(find(&std::fs::read_to_string("/etc/passwd")?, |a| {
        a.name == name
    }))
}

/// The user with uid `uid`, from `/etc/passwd`.
pub fn user_by_uid(uid: u32) -> std::io::Result<Option<Account>> {
    Ok(find(&std::fs::read_to_string("/etc/passwd")?, |a| {
        a.id == uid
    }))
}

/// The group called `name`, from `/etc/group`.
pub fn group_by_name(name: &str) -> std::io::Result<Option<Account>> {
    Ok(find(&std::fs::read_to_string("/etc/group")?, |a| {
        a.name == name
    }))
}

/// The first entry of a passwd or group file (`name:password:id:…`) that
/// `wanted` accepts; comments, blank and malformed lines are passed over.
fn find(text: &str, wanted: impl Fn(&Account) -> bool) -> Option<Account> {
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?.trim();
            let _password = fields.next()?;
            let id = fields.next()?.trim().parse().ok()?;
            (!name.is_empty()).then(|| Account {
                name: name.to_owned(),
                id,
            })
        })
        .find(|account| wanted(account))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
                          # a comment\n\n\
                          broken line\n\
                          medic:x:998:998:medic service supervisor:/var/lib/medic:/usr/sbin/nologin\n\
                          +nis::::::\n";
    const GROUP: &str = "root:x:0:\ndocker:x:999:medic\nmedic:x:998:\n";

    #[test]
    fn entries_are_found_by_name_and_id() {
        let medic = find(PASSWD, |a| a.name == "medic").unwrap();
        assert_eq!(medic.id, 998);
        assert_eq!(find(PASSWD, |a| a.id == 0).unwrap().name, "root");
        assert_eq!(find(GROUP, |a| a.name == "docker").unwrap().id, 999);
    }

    #[test]
    fn comments_and_malformed_lines_are_no_accounts() {
        assert_eq!(find(PASSWD, |a| a.name.starts_with('#')), None);
        assert_eq!(find(PASSWD, |a| a.name == "broken line"), None);
        assert_eq!(find(PASSWD, |a| a.name == "+nis"), None);
        assert_eq!(find("", |_| true), None);
    }

    #[test]
    fn this_host_has_root() {
        assert_eq!(user_by_uid(0).unwrap().unwrap().name, "root");
        assert_eq!(group_by_name("root").unwrap().unwrap().id, 0);
    }
}
