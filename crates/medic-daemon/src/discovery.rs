//! Hands one discovery round of a selector service (Docker containers or
//! launchd jobs) to the daemon as events.

use crate::shell::{Event, Found, Shell};

/// Reports one discovery round of a selector service: a `Found` per instance,
/// then its `Sight`. False once the daemon has stopped listening.
pub async fn report_discovery(
    shell: &Shell,
    service: &str,
    found: Result<Vec<Found>, String>,
) -> bool {
    let sight = match found {
        Ok(found) => {
            let count = found.len();
            for (container, labels) in found {
                let event = Event::Found {
                    service: service.to_owned(),
                    container,
                    labels,
                };
                if shell.events.send(event).await.is_err() {
                    return false;
                }
            }
            Ok(count)
        }
        Err(reason) => Err(reason),
    };
    let event = Event::Sight {
        service: service.to_owned(),
        sight,
    };
    shell.events.send(event).await.is_ok()
}
