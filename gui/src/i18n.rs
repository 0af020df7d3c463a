//! UI text in English and Japanese.
//!
//! [`Lang::from_locale`] maps an OS locale (`ja_JP.UTF-8`, `ja-JP`, `en_US`)
//! to a language; [`Msg`] holds every fixed text in both languages, and
//! [`fill`] puts values into `{name}` placeholders. [`code_fix`] gives the
//! app's own wording of a code's fix where the library's names a CLI command
//! (`pra keygen …`), and the Japanese fix of every client code.

use pra_proto::codes::Code;

/// A UI language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lang {
    En,
    /// Japanese (needs a CJK font, see [`crate::fonts`]).
    Ja,
}

impl Lang {
    /// The language of an OS locale name: Japanese for `ja`, `ja_JP.UTF-8`,
    /// `ja-JP`, …; English for everything else (including `C` and `POSIX`).
    pub fn from_locale(locale: &str) -> Lang {
        let lang = locale
            .split(['_', '-', '.', '@'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if lang == "ja" { Lang::Ja } else { Lang::En }
    }

    /// The OS's language: `LC_ALL`, `LC_MESSAGES`, `LANG` on Unix,
    /// `GetUserDefaultLocaleName` on Windows, the preferred language on macOS.
    pub fn from_os() -> Lang {
        sys_locale::get_locale()
            .map(|l| Lang::from_locale(&l))
            .unwrap_or(Lang::En)
    }

    /// Short tag for logs and the settings file: `en` / `ja`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ja => "ja",
        }
    }
}

macro_rules! messages {
    ($( $(#[$doc:meta])* $key:ident => ($en:expr, $ja:expr), )*) => {
        /// A fixed UI text; [`Msg::text`] gives it in a language.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub(crate) enum Msg {
            $( $(#[$doc])* $key, )*
        }

        impl Msg {
            /// Every message (tests check both languages of each).
            #[cfg(test)]
            const ALL: &'static [Msg] = &[ $( Msg::$key, )* ];

            /// The text in `lang`.
            pub(crate) fn text(self, lang: Lang) -> &'static str {
                match (self, lang) {
                    $( (Msg::$key, Lang::En) => $en, (Msg::$key, Lang::Ja) => $ja, )*
                }
            }
        }
    };
}

messages! {
    // Menus.
    MenuSettings => ("Settings", "設定"),
    MenuServer => ("Server…", "サーバー…"),
    MenuLanguage => ("Language", "言語"),
    LangAuto => ("Automatic (from the system)", "自動 (システムの設定)"),
    MenuKey => ("Key", "鍵"),
    MenuGenerate => ("Generate…", "生成…"),
    MenuExport => ("Export public key…", "公開鍵をエクスポート…"),
    MenuSubmit => ("Submit to registry…", "レジストリへ送信…"),
    MenuKeyState => ("Show key state…", "鍵の状態…"),
    MenuHelp => ("Help", "ヘルプ"),
    MenuLogs => ("Export logs for helpdesk…", "ヘルプデスク用ログを出力…"),
    MenuDoctor => ("Run diagnostics…", "診断を実行…"),
    MenuAbout => ("About PRA", "PRA について"),
    /// Note when no CJK font exists.
    NoJapaneseFont => ("Japanese needs a Japanese font; none was found on this PC", "日本語フォントが見つかりません"),

    // Main window.
    Connect => ("Connect", "接続"),
    Disconnect => ("Disconnect", "切断"),
    StatusDisconnected => ("Disconnected", "未接続"),
    StatusConnecting => ("Connecting to {gateway} …", "{gateway} に接続しています…"),
    StatusConnected => ("Connected to {gateway}", "{gateway} に接続しました"),
    /// Status suffix with the account.
    StatusAs => (" as {user}", " (ユーザー {user})"),
    StatusReconnecting => ("Connection to {gateway} lost; reconnecting …", "{gateway} との接続が切れました。再接続しています…"),
    GatewayLine => ("Gateway: {gateway}", "ゲートウェイ: {gateway}"),
    /// Status detail without a gateway.
    NoGateway => ("No gateway set: open Settings > Server… and enter the address your administrator gave you.", "ゲートウェイが未設定です。設定 → サーバー… で管理者から伝えられたアドレスを入力してください。"),
    Forwards => ("Forwards", "転送"),
    ColRule => ("Rule", "ルール"),
    ColLocal => ("On this PC", "この PC"),
    ColTarget => ("Target", "転送先"),
    ColState => ("State", "状態"),
    NoForwards => ("The forwards appear here once connected.", "接続すると転送の一覧がここに表示されます。"),
    StateForwarding => ("forwarding", "転送中"),
    StateStopped => ("stopped", "停止"),
    /// Rule state with the holder.
    StatePortBusyBy => ("port busy: used by {holder}", "ポート使用中: {holder} が使用しています"),
    /// Rule state without a holder.
    StatePortBusy => ("port busy: used by another program", "ポート使用中: 他のプログラムが使用しています"),
    StatePortDenied => ("port not allowed: {reason}", "ポートを開けません: {reason}"),
    StateTargetRefused => ("target unreachable: {reason}", "転送先に接続できません: {reason}"),
    /// Heading of the error line.
    LastError => ("Last error", "最後のエラー"),
    /// Prefix of a fix.
    FixPrefix => ("What to do: ", "対処: "),
    /// Info that the host key was pinned on first use.
    PinnedNotice => ("The gateway's host key {fingerprint} was pinned on first use: compare it with the fingerprint your administrator gave you.", "ゲートウェイのホスト鍵 {fingerprint} を初回接続で登録しました。管理者から伝えられたフィンガープリントと比べてください。"),

    // Common dialog words.
    Cancel => ("Cancel", "キャンセル"),
    Close => ("Close", "閉じる"),
    Save => ("Save", "保存"),
    Working => ("Working …", "処理中…"),

    // Passphrase dialog.
    PassTitle => ("Passphrase", "パスフレーズ"),
    PassPrompt => ("Passphrase of your key:", "鍵のパスフレーズ:"),
    Remember => ("Remember on this PC", "この PC に記憶する"),
    /// Hint under the checkbox.
    RememberHint => ("Kept in the system's credential store; anyone using your Windows/desktop account can then connect.", "システムの資格情報ストアに保存されます。あなたのアカウントを使える人は接続できるようになります。"),
    Remembered => ("The passphrase is remembered on this PC.", "パスフレーズをこの PC に記憶しました。"),
    ForgetPass => ("Forget the remembered passphrase", "記憶したパスフレーズを消去"),
    Forgotten => ("The remembered passphrase was removed.", "記憶したパスフレーズを消去しました。"),

    // Server dialog.
    ServerTitle => ("Server", "サーバー"),
    ServerAddress => ("Gateway address (HOST or HOST:PORT)", "ゲートウェイのアドレス (HOST または HOST:PORT)"),
    ServerHostKey => ("Pinned host key (SHA256:…)", "登録済みホスト鍵 (SHA256:…)"),
    ServerHostKeyHint => ("Empty: keep the current pin, or pin the key on the first connection.", "空欄: 現在の登録を維持、または初回接続時に登録します。"),
    ServerAlternates => ("Also tried, in this order, when it cannot be reached (kept when you save): {gateways}", "接続できないときは次の順に試します (保存しても残ります): {gateways}"),
    ServerSaved => ("Saved.", "保存しました。"),

    // Key generation.
    GenTitle => ("Generate key", "鍵の生成"),
    GenUser => ("Account name (from your administrator)", "アカウント名 (管理者から)"),
    GenPass => ("Passphrase", "パスフレーズ"),
    GenPassAgain => ("Passphrase again", "パスフレーズ (確認)"),
    GenForce => ("Replace the existing key (the new one must be approved again)", "既存の鍵を置き換える (新しい鍵は再承認が必要)"),
    GenExisting => ("A key exists: {fingerprint} ({user})", "鍵があります: {fingerprint} ({user})"),
    GenButton => ("Generate", "生成"),
    GenDone => ("Created the key of {user}. Fingerprint:", "{user} の鍵を作成しました。フィンガープリント:"),
    GenNext => ("Next: Key > Submit to registry… or Key > Export public key… for your administrator.", "次に: 鍵 → レジストリへ送信… または 鍵 → 公開鍵をエクスポート… で管理者に渡してください。"),

    // Export.
    ExportTitle => ("Export public key", "公開鍵のエクスポート"),
    ExportFile => ("File", "ファイル"),
    ExportButton => ("Export", "エクスポート"),
    ExportDone => ("Wrote {path}: give this file to your administrator.", "{path} に書き出しました。このファイルを管理者に渡してください。"),

    // Submit.
    SubmitTitle => ("Submit to registry", "レジストリへ送信"),
    RegistryUrl => ("Registry URL", "レジストリの URL"),
    SubmitButton => ("Submit", "送信"),
    SubmitPending => ("Pending: ask your administrator to approve the key {fingerprint}, then connect.", "承認待ち: 管理者に鍵 {fingerprint} の承認を依頼し、その後接続してください。"),
    SubmitApproved => ("Approved: you can connect.", "承認済み: 接続できます。"),

    // Key state.
    StateTitle => ("Key state", "鍵の状態"),
    KeyFingerprint => ("Fingerprint", "フィンガープリント"),
    KeyUser => ("Account", "アカウント"),
    KeyCreated => ("Created", "作成日時"),
    KeyBound => ("Bound to", "結び付いた PC"),
    KeyRegistry => ("In the registry", "レジストリ上"),
    AskRegistry => ("Ask the registry", "レジストリに問い合わせる"),
    KsPending => ("pending: waiting for the administrator's approval", "承認待ち"),
    KsApproved => ("approved", "承認済み"),
    KsRevoked => ("revoked: generate a new key and have it approved", "失効: 新しい鍵を生成して承認を受けてください"),
    KsUnknown => ("not asked yet", "未確認"),

    // Enrollment with an invite.
    MenuEnroll => ("Enroll with an invite…", "招待で登録…"),
    EnrollTitle => ("Enroll with an invite", "招待で登録"),
    EnrollText => ("Paste the invite your administrator gave you (one line starting with pra-invite:).", "管理者から受け取った招待 (pra-invite: で始まる 1 行) を貼り付けてください。"),
    EnrollInvite => ("Invite", "招待"),
    /// Shown once the pasted invite parses, for the user to confirm.
    EnrollCheck => ("For the account {user} at the gateway {gateway}, valid until {expires}.", "アカウント {user}、ゲートウェイ {gateway} 用 (有効期限 {expires})。"),
    /// A key of the invite's user exists: it is handed over again.
    EnrollReuse => ("The key {fingerprint} of {user} on this PC is handed over again; type its passphrase (empty: the remembered one).", "この PC にある {user} の鍵 {fingerprint} をもう一度渡します。そのパスフレーズを入力してください (空欄: 記憶したもの)。"),
    EnrollButton => ("Enroll", "登録"),
    EnrollWorking => ("Making the key and handing it over to the gateway …", "鍵を作成してゲートウェイに渡しています…"),
    EnrollDone => ("Enrolled: the key of {user} was handed over to {gateway}. Fingerprint:", "登録しました: {user} の鍵を {gateway} に渡しました。フィンガープリント:"),
    EnrollNextApproved => ("Next: press Connect.", "次に: 「接続」を押してください。"),
    EnrollNextPending => ("Next: ask your administrator to approve the key, then press Connect.", "次に: 管理者に鍵の承認を依頼し、その後「接続」を押してください。"),
    /// Main window, while this PC has no key.
    NoKey => ("No key on this PC yet.", "この PC にはまだ鍵がありません。"),

    // Diagnostics.
    DoctorTitle => ("Diagnostics", "診断"),
    DoctorRun => ("Run again", "再実行"),
    DoctorPass => ("Passphrase, for the key checks (empty: the remembered one, or skip them)", "パスフレーズ (鍵の確認用。空欄: 記憶したもの、なければ省略)"),

    // Logs.
    LogsTitle => ("Export logs for helpdesk", "ヘルプデスク用ログの出力"),
    LogsText => ("One zip file with System.log, User.log, the settings (without secrets) and a fresh diagnostics report.", "System.log、User.log、設定 (秘密情報を除く) と最新の診断結果を 1 つの zip にまとめます。"),
    LogsDone => ("Wrote {path}: send this file to the helpdesk.", "{path} に書き出しました。このファイルをヘルプデスクに送ってください。"),

    // About.
    AboutTitle => ("About PRA", "PRA について"),
    AboutText => ("SSH port forwarding for remote work.", "リモートワーク用 SSH ポート転送。"),
    Version => ("Version {version}", "バージョン {version}"),
    DataFolder => ("Data folder: {path}", "データフォルダー: {path}"),

    // Tray.
    TrayOpen => ("Open window", "ウィンドウを開く"),
    TrayQuit => ("Quit", "終了"),
}

/// Put `values` into the `{name}` placeholders of `template`.
pub(crate) fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

/// The fix the app shows for `code`: in Japanese the app's translation; in
/// English the app's wording where the library's generic fix names a CLI
/// command, else `None` (use the library's fix, which may be more specific).
pub(crate) fn code_fix(code: Code, lang: Lang) -> Option<&'static str> {
    match lang {
        Lang::Ja => fix_ja(code),
        Lang::En => fix_en_gui(code),
    }
}

/// Fixes reworded for the app (no terminal commands).
fn fix_en_gui(code: Code) -> Option<&'static str> {
    Some(match code {
        Code::ConfigInvalid => {
            "correct the named setting in Settings > Server…, or ask the helpdesk"
        }
        Code::ServerNotSet => {
            "open Settings > Server… and enter the address your administrator gave you"
        }
        Code::KeyMissing => {
            "create a key with Key > Generate…, then hand it to your administrator with Key > Submit to registry…"
        }
        Code::KeyExists => {
            "keep using it, or tick \"Replace the existing key\" (the new key must be approved again)"
        }
        Code::KeyDamaged | Code::KeyRevoked => {
            "create a new key with Key > Generate… (tick \"Replace the existing key\") and have it approved"
        }
        Code::PassphraseUnavailable => "type the passphrase in the dialog",
        Code::GatewayNotResolved => {
            "check the address in Settings > Server… and your internet connection"
        }
        Code::RulesNotFetched | Code::GatewayProtocol => {
            "run Help > Run diagnostics… to see which step fails; if it persists send Help > Export logs for helpdesk…"
        }
        Code::HostKeyChanged => {
            "do not connect; ask your administrator for the gateway's fingerprint and enter it in Settings > Server…"
        }
        Code::KeyPending => {
            "ask your administrator to approve the key (its fingerprint: Key > Show key state…)"
        }
        Code::KeyRefused => {
            "submit the key with Key > Submit to registry… and ask your administrator to approve it"
        }
        Code::InviteExpired => "ask your administrator for a new invite",
        Code::InviteUsed => {
            "ask your administrator for a new invite; if you enrolled already, press Connect"
        }
        Code::EnrollFailed => {
            "check that this PC's clock is right and try again; if it persists send Help > Export logs for helpdesk…"
        }
        _ => return None,
    })
}

/// Japanese fixes of the codes an employee meets.
fn fix_ja(code: Code) -> Option<&'static str> {
    Some(match code {
        Code::ConfigInvalid => {
            "設定 → サーバー… で指摘された項目を直すか、ヘルプデスクに相談してください"
        }
        Code::ServerNotSet => "設定 → サーバー… で管理者から伝えられたアドレスを入力してください",
        Code::PortBusy => {
            "そのポートを使っているプログラムを終了してから再接続してください (他の転送は動作しています)"
        }
        Code::TargetRefused => {
            "社内のサーバーが停止している可能性があります。続く場合は管理者に連絡してください (他の転送は動作しています)"
        }
        Code::HomeUnwritable => {
            "データフォルダーの書き込み権限を確認するか、別の保存先を選んでください"
        }
        Code::LogExportFailed => "別の保存先を選ぶか、ディスクの空きを増やしてください",
        Code::PortDenied => {
            "管理者にルールのポートを 1024 より上に変えてもらうか、このプログラムに許可を与えてください"
        }
        Code::KeyMissing => {
            "鍵 → 生成… で鍵を作り、鍵 → レジストリへ送信… で管理者に渡してください"
        }
        Code::KeyExists => {
            "そのまま使うか、「既存の鍵を置き換える」を選んでください (新しい鍵は再承認が必要です)"
        }
        Code::KeyPermissions => {
            "鍵ファイルを自分だけが読めるようにするか、新しい鍵を生成してください"
        }
        Code::KeyNotLoaded => {
            "パスフレーズを入力し直してください。PC を替えた場合は新しい鍵を生成して再承認を受けてください"
        }
        Code::KeyDamaged | Code::KeyRevoked => {
            "鍵 → 生成… で新しい鍵を作り (「既存の鍵を置き換える」)、承認を受けてください"
        }
        Code::PassphraseRejected => {
            "空でないパスフレーズを選び、2 回とも同じように入力してください"
        }
        Code::UserNameInvalid => {
            "管理者から伝えられたアカウント名を入力してください (英数字と . _ - @)"
        }
        Code::PassphraseUnavailable => "ダイアログでパスフレーズを入力してください",
        Code::GatewayNotResolved => {
            "設定 → サーバー… のアドレスとインターネット接続を確認してください"
        }
        Code::GatewayUnreachable => {
            "インターネット接続を確認してください。ファイアウォールがポートを塞いでいる可能性があります。時間をおいて再試行してください"
        }
        Code::RulesNotFetched | Code::GatewayProtocol => {
            "ヘルプ → 診断を実行… でどの段階が失敗しているか確認してください。続く場合は ヘルプ → ヘルプデスク用ログを出力… を送ってください"
        }
        Code::HostKeyChanged => {
            "接続しないでください。管理者にゲートウェイのフィンガープリントを確認し、設定 → サーバー… に入力してください"
        }
        Code::KeyPending => {
            "管理者に鍵の承認を依頼してください (フィンガープリント: 鍵 → 鍵の状態…)"
        }
        Code::KeyRefused => "鍵 → レジストリへ送信… で鍵を送り、管理者に承認を依頼してください",
        Code::NoRules => "管理者にあなたのアカウントの転送ルールを追加してもらってください",
        Code::RegistryUnreachable => {
            "管理者から伝えられたレジストリの URL と接続を確認してください"
        }
        Code::RegistryGarbage => {
            "レジストリの URL を確認してください (例: https://registry.example.com)"
        }
        Code::RegistryRefused => {
            "表示された理由を確認し、アカウントや鍵に関するものなら管理者に相談してください"
        }
        Code::RegistryUrlInvalid => {
            "管理者から伝えられた URL を入力してください (例: https://registry.example.com)"
        }
        Code::Reconnecting | Code::GatewayFailover => {
            "操作は不要です。ゲートウェイに届くようになると転送は自動で再開します"
        }
        Code::InviteMalformed => {
            "管理者から送られた招待 (pra-invite: で始まる 1 行) を全体そのままコピーし直すか、新しい招待を依頼してください"
        }
        Code::InviteExpired | Code::InviteRevoked => "管理者に新しい招待を依頼してください",
        Code::InviteUsed => {
            "管理者に新しい招待を依頼してください。登録済みなら「接続」を押してください"
        }
        Code::InviteRefused => {
            "招待がこのゲートウェイ用で全体がコピーされているか確認し、管理者に新しい招待を依頼してください。何度も失敗した場合は数分待ってください"
        }
        Code::EnrollFailed => {
            "この PC の時計が正しいか確認して再試行してください。続く場合は ヘルプ → ヘルプデスク用ログを出力… を送ってください"
        }
        Code::CredentialStore => {
            "接続のたびにパスフレーズを入力してください。記憶させるにはデスクトップのキーリング (Secret Service / 資格情報マネージャー / キーチェーン) を起動・ロック解除してください"
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `{name}` placeholders of a template, sorted (tests compare languages).
    fn placeholders(template: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            let after = &rest[start + 1..];
            match after.find('}') {
                Some(end) => {
                    out.push(after[..end].to_string());
                    rest = &after[end + 1..];
                }
                None => break,
            }
        }
        out.sort();
        out
    }

    #[test]
    fn locales() {
        let japanese = [
            "ja_JP.UTF-8",
            "ja-JP",
            "ja",
            "JA_jp",
            "ja_JP.eucJP@calendar=japanese",
        ];
        let english = ["en_US.UTF-8", "en-GB", "de_DE", "C", "POSIX", "", "jav"];
        for (locales, want) in [(&japanese[..], Lang::Ja), (&english[..], Lang::En)] {
            for locale in locales {
                assert_eq!(Lang::from_locale(locale), want, "{locale}");
            }
        }
    }

    #[test]
    fn every_message_in_both_languages_with_the_same_placeholders() {
        assert!(Msg::ALL.len() > 50);
        for m in Msg::ALL {
            let (en, ja) = (m.text(Lang::En), m.text(Lang::Ja));
            assert!(!en.is_empty() && !ja.is_empty(), "{m:?}");
            assert_eq!(placeholders(en), placeholders(ja), "{m:?}");
        }
    }

    #[test]
    fn fill_replaces_every_placeholder() {
        let t = Msg::StatusConnected.text(Lang::En);
        assert_eq!(fill(t, &[("gateway", "gw:10022")]), "Connected to gw:10022");
        assert_eq!(placeholders("a {x} b {y}"), vec!["x", "y"]);
        assert_eq!(fill("{a}{a}", &[("a", "1")]), "11");
    }

    #[test]
    fn fixes_in_the_app_name_no_command_line() {
        for code in Code::ALL {
            if let Some(f) = code_fix(*code, Lang::En) {
                assert!(!f.contains("`pra"), "{code:?}: {f}");
            }
        }
        for code in [
            Code::KeyNotLoaded,
            Code::RulesNotFetched,
            Code::PortBusy,
            Code::ServerNotSet,
            Code::KeyPending,
            Code::CredentialStore,
        ] {
            assert!(code_fix(code, Lang::Ja).is_some(), "{code:?}");
        }
        // The library's fix of ERR(10193) needs no rewording.
        assert_eq!(code_fix(Code::KeyNotLoaded, Lang::En), None);
    }
}
