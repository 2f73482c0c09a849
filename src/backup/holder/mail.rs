//! The confirmation mail a holder sends to an address whose first backup arrives.

use super::*;

/// The mail that asks an address's owner to confirm a slot.
pub fn confirmation_mail(policy: &Policy, key: &SlotKey, token: &str) -> Mail {
    let url = &policy.public_url;
    let host = &policy.public_host;
    let short = key.fingerprint.short();
    Mail {
        to: key.email.clone(),
        subject: format!("Is this your diaspora* account's backup? ({host})"),
        text: format!(
            "Hello,\n\
             \n\
             The lifeboat pod {url} now holds an encrypted backup of a diaspora* account\n\
             that gives this address ({email}). A pod sent it, presumably your diaspora*\n\
             home pod, signed with the account key whose short fingerprint is\n\
             \n\
             \x20   {short}\n\
             \n\
             Your home pod shows the same fingerprint in its backup settings.\n\
             \n\
             The backup is sealed with your backup pass phrase: this pod cannot read it.\n\
             \n\
             - If your home pod ever disappears, restore your account here:\n\
             \x20 {url}/restore_backup\n\
             \x20 with this email address and your backup pass phrase.\n\
             - To move to another pod while yours still works, use \"Move to another pod\"\n\
             \x20 in your pod's settings; you get your backup as a file that any lifeboat\n\
             \x20 pod takes in.\n\
             \n\
             Please tell this pod whether the backup is yours. Open\n\
             \n\
             \x20   {url}/backups/confirm?token={token}\n\
             \n\
             and press \"Yes, this is my pod's backup\", or \"Not mine - delete it\".\n\
             Opening the link alone changes nothing. It works for 30 days.\n\
             \n\
             If you have no diaspora* account, someone gave your address by mistake:\n\
             press \"Not mine\" and this pod deletes the backup and sends you nothing more\n\
             about it.\n\
             \n\
             -- \n\
             lifeboat at {host}\n",
            email = key.email,
        ),
    }
}
