//! Tests of `entities`.

use super::*;
use crate::federation::signature::sign_base64;
use crate::federation::test_support::{
    assert_no_panic_on_damaged_input, key_2048, other_key_2048, python_elements, reference, vector_key_pair,
};

fn example(name: &str) -> String {
    reference(&format!("diaspora-examples/{name}.example.xml"))
}

fn full_profile() -> Profile {
    Profile {
        author: "alice@example.org".into(),
        edited_at: Some("2018-01-23T01:19:56Z".into()),
        full_name: Some("Alice Smith".into()),
        first_name: Some("Alice".into()),
        last_name: Some("Smith".into()),
        image_url: Some("https://example.org/images/thumb_large_a795f872c93309597345.jpg".into()),
        image_url_medium: Some("https://example.org/images/thumb_medium_a795f872c93309597345.jpg".into()),
        image_url_small: Some("https://example.org/images/thumb_small_a795f872c93309597345.jpg".into()),
        bio: Some("some text about me".into()),
        birthday: Some("1988-07-15".into()),
        gender: Some("Male".into()),
        location: Some("github".into()),
        searchable: Some(true),
        public: Some(false),
        nsfw: Some(false),
        tag_string: Some("#i #love #tags".into()),
    }
}

const PROFILE_ORDER: [&str; 16] = [
    "author",
    "edited_at",
    "full_name",
    "first_name",
    "last_name",
    "image_url",
    "image_url_medium",
    "image_url_small",
    "bio",
    "birthday",
    "gender",
    "location",
    "searchable",
    "public",
    "nsfw",
    "tag_string",
];

#[test]
fn parses_the_reference_profile_and_writes_it_back_byte_for_byte() {
    let xml = example("profile");
    let profile = Profile::parse(&xml).unwrap();
    assert_eq!(profile, full_profile());
    assert_eq!(profile.to_xml(), xml.trim_end());
    validate_profile(&profile).unwrap();
}

#[test]
fn parses_the_reference_contact_and_deletion_and_writes_them_back() {
    let xml = example("contact");
    let contact = Contact::parse(&xml).unwrap();
    assert_eq!(contact, Contact::start_sharing("alice@example.org", "bob@example.com"));
    assert_eq!(contact.to_xml(), xml.trim_end());

    let xml = example("account_deletion");
    let deletion = AccountDeletion::parse(&xml).unwrap();
    assert_eq!(deletion.author, "alice@example.org");
    assert_eq!(deletion.to_xml(), xml.trim_end());
}

#[test]
fn parses_the_reference_account_migration() {
    let migration = AccountMigration::parse(&example("account_migration")).unwrap();
    assert_eq!(migration.author, "alice@example.org");
    assert_eq!(migration.old_identity.as_deref(), Some("alice@example.org"));
    assert_eq!(migration.form(), MigrationForm::OldAuthor);
    assert_eq!(migration.new_identity(), "alice@newpod.example.net");
    assert_eq!(
        migration.signature,
        "07b1OIY6sTUQwV5pbpgFK0uz6W4cu+oQnlg410Q4uISUOdNOlBdYqhZJm62VFhgvzt4TZXfiJgoupFkRjP0BsaVaZuP2zKMNvO3ngWOeJRf2oRK4Ub5cEA/g7yijkRc+7y8r1iLJ31MFb1czyeCsLxw9Ol8SvAJddogGiLHDhjE="
    );
    let profile = &migration.profile;
    assert_eq!(profile.first_name.as_deref(), Some("my name"));
    assert_eq!(profile.last_name, None, "an empty element is no value");
    assert_eq!(profile.full_name, None);
    assert_eq!(profile.image_url.as_deref(), Some("/assets/user/default.png"));
    assert_eq!(profile.birthday.as_deref(), Some("1988-07-15"));
    assert_eq!(profile.gender.as_deref(), Some("Female"));
    assert_eq!(profile.bio.as_deref(), Some("some text about me"));
    assert_eq!(profile.location.as_deref(), Some("github"));
    assert_eq!(profile.searchable, Some(true));
    assert_eq!(profile.public, None);
    assert_eq!(profile.nsfw, Some(false));
    assert_eq!(profile.tag_string.as_deref(), Some("#i #love #tags"));
    validate_profile(profile).unwrap();

    // The sample signature was made with an unpublished key.
    let (_, some_key) = vector_key_pair();
    assert!(migration.verify_signature(&some_key).is_err());
}

#[test]
fn account_migration_signed_by_the_new_key_verifies_only_with_it() {
    let new_key = key_2048();
    let profile = Profile {
        author: "alice@lifeboat.example".into(),
        full_name: Some("Alice".into()),
        ..Profile::default()
    };
    let migration = AccountMigration::new_signed("alice@old.example", profile, new_key);
    assert_eq!(
        AccountMigration::signed_text("alice@old.example", "alice@lifeboat.example"),
        "AccountMigration:alice@old.example:alice@lifeboat.example"
    );
    assert_eq!(
        migration.signature,
        sign_base64(new_key, b"AccountMigration:alice@old.example:alice@lifeboat.example")
    );
    assert_eq!(migration.author, "alice@old.example");
    assert_eq!(migration.old_identity.as_deref(), Some("alice@old.example"));
    migration.verify_signature(&new_key.to_public_key()).unwrap();
    let err = migration
        .verify_signature(&other_key_2048().to_public_key())
        .unwrap_err();
    assert!(matches!(err, Error::Unauthorized(_)));

    let reparsed = AccountMigration::parse(&migration.to_xml()).unwrap();
    assert_eq!(reparsed, migration);
    reparsed.verify_signature(&new_key.to_public_key()).unwrap();

    let mut redirected = migration.clone();
    redirected.profile.author = "mallory@evil.example".into();
    assert!(redirected.verify_signature(&new_key.to_public_key()).is_err());
}

#[test]
fn account_migration_reader_ignores_whitespace_around_base64_and_defaults_old_identity() {
    let (private_key, public_key) = vector_key_pair();
    let signature = sign_base64(&private_key, b"AccountMigration:old@a.example:new@b.example");
    let wrapped: String = signature
        .as_bytes()
        .chunks(60)
        .map(|chunk| format!("\n      {}", std::str::from_utf8(chunk).unwrap()))
        .collect();
    let xml = format!(
        "<account_migration>\n  <author> old@a.example </author>\n  <profile><author>new@b.example</author></profile>\n  <signature>{wrapped}\n  </signature>\n</account_migration>"
    );
    let migration = AccountMigration::parse(&xml).unwrap();
    assert_eq!(migration.signature, signature);
    assert_eq!(migration.author, "old@a.example");
    assert_eq!(migration.old_identity, None);
    assert_eq!(migration.old_id(), Some("old@a.example"));
    migration.verify_signature(&public_key).unwrap();
}

#[test]
fn account_migration_check_tells_the_two_forms_apart_and_applies_diasporas_rules() {
    let migration = |author: &str, profile_author: &str, old: Option<&str>| AccountMigration {
        author: author.into(),
        profile: Profile {
            author: profile_author.into(),
            ..Profile::default()
        },
        signature: "AAAA".into(),
        old_identity: old.map(str::to_string),
    };
    let checked = |m: AccountMigration| m.check().map(|c| (c.form, c.old_id, c.new_id));
    let (o, n) = ("old@a.example", "new@b.example");
    assert_eq!(
        checked(migration(o, n, None)).unwrap(),
        (MigrationForm::OldAuthor, o.into(), n.into())
    );
    assert_eq!(checked(migration(o, n, Some(o))).unwrap().0, MigrationForm::OldAuthor);
    assert_eq!(
        checked(migration(n, n, Some(o))).unwrap(),
        (MigrationForm::NewAuthor, o.into(), n.into())
    );
    let refused = [
        migration(n, n, None),
        migration(o, n, Some("third@c.example")),
        migration(n, n, Some("Not An ID")),
        migration("Old@A.example", n, None),
        migration(o, "new", None),
        migration(o, o, Some(o)),
    ];
    for m in refused {
        assert!(matches!(m.check(), Err(Error::BadRequest(_))), "{m:?}");
    }
    let mut long_name = migration(o, n, None);
    long_name.profile.first_name = Some("x".repeat(33));
    assert!(long_name.check().is_err(), "the profile passes diaspora*'s rules");
}

#[test]
fn written_xml_has_the_documented_element_order_for_an_independent_reader() {
    let new_key = key_2048();
    let migration = AccountMigration::new_signed("alice@old.example", full_profile(), new_key);
    let xml = migration.to_xml();
    assert!(!xml.starts_with("<?xml"), "no XML declaration");
    let elements = python_elements(&xml);
    let top_level: Vec<&str> = elements
        .iter()
        .filter(|(depth, _, _)| *depth == 1)
        .map(|(_, tag, _)| tag.as_str())
        .collect();
    assert_eq!(top_level, ["author", "profile", "signature", "old_identity"]);
    let profile_order: Vec<&str> = elements
        .iter()
        .filter(|(depth, _, _)| *depth == 2)
        .map(|(_, tag, _)| tag.as_str())
        .collect();
    assert_eq!(profile_order, PROFILE_ORDER);
    assert_eq!(elements[0].1, "account_migration");
    let signature = elements.iter().find(|e| e.1 == "signature").unwrap();
    assert_eq!(signature.2, migration.signature);
}

#[test]
fn omits_absent_values_and_escapes_text_for_an_independent_reader() {
    let profile = Profile {
        author: "bob@example.org".into(),
        full_name: Some("Bob <script>&amp;</script>".into()),
        first_name: Some(String::new()),
        bio: Some("line one\r\nline \"two\" & 'three' ]]> \u{7}".into()),
        searchable: Some(false),
        ..Profile::default()
    };
    let xml = profile.to_xml();
    let elements = python_elements(&xml);
    let tags: Vec<&str> = elements.iter().map(|e| e.1.as_str()).collect();
    assert_eq!(
        tags,
        ["profile", "author", "full_name", "bio", "searchable"],
        "empty and absent values are not written"
    );
    assert_eq!(elements[2].2, "Bob <script>&amp;</script>");
    assert_eq!(elements[3].2, "line one\r\nline \"two\" & 'three' ]]> \u{FFFD}");
    assert_eq!(elements[4].2, "false");

    let reparsed = Profile::parse(&xml).unwrap();
    assert_eq!(reparsed.full_name, profile.full_name);
    assert_eq!(reparsed.first_name, None);
    assert_eq!(
        reparsed.bio.as_deref(),
        Some("line one\r\nline \"two\" & 'three' ]]> \u{FFFD}")
    );
}

#[test]
fn readers_ignore_unknown_and_empty_elements_and_keep_the_first_duplicate() {
    let xml = "<profile><author>a@b.c</author><full_name/><unknown>x<deep/></unknown>\
               <bio></bio><searchable></searchable><nsfw>YES</nsfw>\
               <gender>first</gender><gender>second</gender></profile>";
    let profile = Profile::parse(xml).unwrap();
    assert_eq!(profile.full_name, None);
    assert_eq!(profile.bio, None);
    assert_eq!(profile.searchable, None);
    assert_eq!(profile.nsfw, Some(true));
    assert_eq!(profile.gender.as_deref(), Some("first"));
}

#[test]
fn readers_refuse_missing_required_values_and_bad_flags() {
    assert!(Profile::parse("<profile><full_name>x</full_name></profile>").is_err());
    assert!(Profile::parse("<contact><author>a@b.c</author></contact>").is_err());
    assert!(AccountMigration::parse(
        "<account_migration><author>a@b.c</author><signature>AAAA</signature></account_migration>"
    )
    .is_err());
    assert!(AccountMigration::parse(
        "<account_migration><author>a@b.c</author><profile><author>d@e.f</author></profile><signature> </signature></account_migration>"
    )
    .is_err());
    let contact = |flags: &str| {
        Contact::parse(&format!(
            "<contact><author>a@b.c</author><recipient>d@e.f</recipient>{flags}</contact>"
        ))
    };
    let defaults = contact("").unwrap();
    assert!(defaults.following && defaults.sharing && !defaults.blocking);
    assert!(contact("<following>maybe</following>").is_err());
    assert!(contact("<blocking>true</blocking>").is_err());
    let blocked = contact("<following>false</following><sharing>f</sharing><blocking>1</blocking>").unwrap();
    assert!(blocked.blocking && !blocked.following && !blocked.sharing);
    assert_eq!(
        Contact::stop_sharing("a@b.c", "d@e.f").to_xml(),
        "<contact>\n  <author>a@b.c</author>\n  <recipient>d@e.f</recipient>\n  <following>false</following>\n  <sharing>false</sharing>\n  <blocking>false</blocking>\n</contact>"
    );
}

#[test]
fn parse_entity_recognises_entities_by_root_element() {
    assert!(matches!(parse_entity(&example("profile")).unwrap(), Entity::Profile(_)));
    assert!(matches!(
        parse_entity(&example("account_migration")).unwrap(),
        Entity::AccountMigration(_)
    ));
    assert!(matches!(parse_entity(&example("contact")).unwrap(), Entity::Contact(_)));
    assert!(matches!(
        parse_entity(&example("account_deletion")).unwrap(),
        Entity::AccountDeletion(_)
    ));
    let status = "<status_message><author>a@b.c</author><text>hi</text></status_message>";
    assert_eq!(parse_entity(status).unwrap(), Entity::Other("status_message".into()));
    let comment = reference("signature-vectors/comment_xml_alice.xml");
    assert_eq!(parse_entity(&comment).unwrap(), Entity::Other("comment".into()));
    assert!(Profile::parse(&example("contact")).is_err());
}

#[test]
fn parse_entity_refuses_doctype_and_malformed_xml() {
    let with_doctype =
        "<?xml version=\"1.0\"?>\n<!DOCTYPE profile [<!ENTITY x \"y\">]>\n<profile><author>&x;</author></profile>";
    let err = parse_entity(with_doctype).unwrap_err();
    assert!(matches!(err, Error::BadRequest(_)));
    assert!(err.to_string().contains("DOCTYPE"), "{err}");
    let external = "<!DOCTYPE foo SYSTEM \"file:///etc/passwd\"><foo/>";
    assert!(parse_entity(external).is_err());
    assert!(parse_entity("<status_message><text>unclosed").is_err());
    assert!(parse_entity("not xml").is_err());
}

#[test]
fn entity_readers_never_panic_on_damaged_input() {
    for name in ["profile", "account_migration", "contact", "account_deletion"] {
        assert_no_panic_on_damaged_input(&example(name), parse_entity);
    }
}

#[test]
fn validate_profile_applies_diasporas_rules() {
    let valid = full_profile();
    validate_profile(&valid).unwrap();
    let problems = |change: &dyn Fn(&mut Profile)| {
        let mut profile = valid.clone();
        change(&mut profile);
        validate_profile(&profile).err().unwrap_or_default()
    };
    assert!(problems(&|p| p.full_name = Some("é".repeat(70))).is_empty());
    assert_eq!(problems(&|p| p.full_name = Some("x".repeat(71))).len(), 1);
    assert!(problems(&|p| p.first_name = Some("x".repeat(32))).is_empty());
    assert_eq!(problems(&|p| p.first_name = Some("x".repeat(33))).len(), 1);
    assert_eq!(problems(&|p| p.last_name = Some("x".repeat(33))).len(), 1);
    for field in 0..3 {
        let found = problems(&|p| {
            let value = Some("a;b".to_string());
            match field {
                0 => p.full_name = value,
                1 => p.first_name = value,
                _ => p.last_name = value,
            }
        });
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("';'"));
    }
    assert!(problems(&|p| p.gender = Some("x".repeat(255))).is_empty());
    assert_eq!(problems(&|p| p.gender = Some("x".repeat(256))).len(), 1);
    assert_eq!(problems(&|p| p.location = Some("x".repeat(256))).len(), 1);
    assert!(problems(&|p| p.bio = Some("x".repeat(65_535))).is_empty());
    assert_eq!(problems(&|p| p.bio = Some("x".repeat(65_536))).len(), 1);
    assert!(problems(&|p| p.tag_string = Some("#a #b #c #d #e".into())).is_empty());
    assert_eq!(problems(&|p| p.tag_string = Some("#a #b #c #d #e #f".into())).len(), 1);
    for bad in [
        "1988-02-30",
        "1988-13-01",
        "88-07-15",
        "1988-7-15",
        "x1988-07-15",
        "1988-07-15 ",
    ] {
        assert_eq!(problems(&|p| p.birthday = Some(bad.into())).len(), 1, "{bad}");
    }
    assert!(problems(&|p| p.birthday = Some("2000-02-29".into())).is_empty());
    assert!(problems(&|p| p.birthday = Some(String::new())).is_empty());
    assert_eq!(problems(&|p| p.author = "Alice@example.org".into()).len(), 1);
    let many = problems(&|p| {
        p.full_name = Some("x;".repeat(40));
        p.bio = Some("y".repeat(70_000));
    });
    assert_eq!(many.len(), 3, "{many:?}");
}

#[test]
fn guid_rule() {
    for good in [
        "7dba7ca01d64013485eb3131731751e9",
        "0123456789abcdef",
        "abc-def_ghi@jkl.mno:pqr1",
        &"a".repeat(255),
    ] {
        assert!(valid_guid(good), "{good}");
    }
    for bad in [
        "0123456789abcde",
        &"a".repeat(256),
        "0123456789abcdef-",
        "0123456789abcdef.",
        "0123456789abcdef:",
        "0123456789abcdef@",
        "0123456789abcdef_",
        "0123456789 abcdef",
        "0123456789abcdeé",
        "0123456789abcde/x",
    ] {
        assert!(!valid_guid(bad), "{bad}");
    }
}

#[test]
fn diaspora_id_rule() {
    for good in [
        "alice@example.org",
        "a.b-c_d9@pod.example.org",
        "alice@localhost",
        "alice@localhost:3000",
        "alice@127.0.0.1:8080",
        "alice@[::1]",
        "alice@[2001:db8::1]:443",
        "alice@xn--bcher-kva.example",
    ] {
        assert!(valid_diaspora_id(good), "{good}");
    }
    for bad in [
        "",
        "alice",
        "@example.org",
        "alice@",
        "Alice@example.org",
        "alice@Example.org",
        "al ice@example.org",
        "alice@exa mple.org",
        "alice@example.org:",
        "alice@example.org:80a",
        "alice@example.org/path",
        "alice@b@example.org",
        "alice@[::1",
        "alice@[xyz::1]",
        "alice@.example.org",
        "alice@bücher.example",
        &format!("alice@{}.org", "a".repeat(250)),
    ] {
        assert!(!valid_diaspora_id(bad), "{bad}");
    }
}

#[test]
fn timestamps_are_iso8601_utc_to_the_second() {
    let time = time::macros::datetime!(2018-01-23 02:19:56.789 +01:00);
    assert_eq!(format_timestamp(time), "2018-01-23T01:19:56Z");
}
