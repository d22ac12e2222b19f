//! Modern mode: the fixture platforms as the real ones behave today. Search needs a login
//! (Taobao, Tmall, JD), sessions expire, Taobao/Tmall listings come only from a signed
//! mtop-like JSONP API with a slider challenge past a rate, JD splits each page in two
//! requests, and Amazon.cn answers bursts with a robot check.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::{Environment, context};
use rand::Rng;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::FixtureError;
use super::catalogue::CatalogueListing;
use super::render::Site;

/// The app key Taobao's H5 pages send to mtop.
pub const MTOP_APP_KEY: &str = "12574478";
/// The mtop API the search shell calls.
pub const MTOP_SEARCH_API: &str = "mtop.relationrecommend.wirelessrecommend.recommend";

/// The fixture mtop signature: lowercase hex SHA-256 of `token&t&appKey&data`. The search
/// shell computes the same in JavaScript (SubtleCrypto).
pub fn mtop_sign(token: &str, t: &str, app_key: &str, data: &str) -> String {
    hex::encode(Sha256::digest(format!("{token}&{t}&{app_key}&{data}")))
}

/// Which behaviour the fixture server emulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FixtureMode {
    /// Anonymous static HTML pages, as the platforms served them years ago. The crawler,
    /// the demo, the benchmarks and the old tests use this until the crawler can log in.
    #[default]
    Classic,
    /// Logins, expiring sessions, script-rendered listings and challenges.
    Modern,
}

/// Knobs of modern mode; every field maps to a `fixtures serve` flag.
#[derive(Debug, Clone)]
pub struct ModernOptions {
    /// Fixture accounts (`--accounts`; default `<fixtures_dir>/accounts.toml`).
    pub accounts: Option<PathBuf>,
    /// A session expires this long after login (`--session-ttl-secs`).
    pub session_ttl: Duration,
    /// A session expires after this many gated requests; 0 = no limit
    /// (`--session-max-requests`).
    pub session_max_requests: u32,
    /// Amazon.cn: more than this many page requests from one client within `burst_window`
    /// earn the robot check (`--burst-limit`).
    pub burst_limit: u32,
    /// (`--burst-window-secs`)
    pub burst_window: Duration,
    /// How long the robot check lasts (`--robot-check-secs`).
    pub robot_check: Duration,
    /// Taobao/Tmall: mtop calls a session may make before the slider (`--mtop-max-calls`).
    pub mtop_max_calls: u32,
    /// How long a passed slider's `x5sec` cookie clears its session (`--clearance-ttl-secs`).
    pub clearance_ttl: Duration,
}

impl Default for ModernOptions {
    fn default() -> Self {
        ModernOptions {
            accounts: None,
            session_ttl: Duration::from_secs(30 * 60),
            session_max_requests: 0,
            burst_limit: 20,
            burst_window: Duration::from_secs(10),
            robot_check: Duration::from_secs(60),
            mtop_max_calls: 60,
            clearance_ttl: Duration::from_secs(10 * 60),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Account {
    name: String,
    password: String,
}

/// The login group a platform belongs to: Tmall signs in through Taobao.
fn group(platform: &str) -> &str {
    if platform == "tmall" {
        "taobao"
    } else {
        platform
    }
}

/// The cookie holding a group's session id, as the real sites name it.
fn session_cookie(group: &str) -> &'static str {
    match group {
        "taobao" => "cookie2",
        "jd" => "thor",
        _ => "session-token",
    }
}

struct Session {
    group: String,
    created: Instant,
    requests: u32,
    mtop_calls: u32,
    /// The `_m_h5_tk` token issued to this session.
    token: Option<String>,
    /// The open slider challenge's `x5secdata`.
    punish: Option<String>,
}

#[derive(Default)]
struct Client {
    hits: VecDeque<Instant>,
    blocked_until: Option<Instant>,
}

pub(crate) struct Modern {
    opts: ModernOptions,
    accounts: HashMap<String, Vec<Account>>,
    sessions: Mutex<HashMap<String, Session>>,
    clients: Mutex<HashMap<String, Client>>,
    /// Keys the `x5sec` clearance cookies.
    secret: String,
}

/// What the request carried that modern mode looks at.
pub(crate) struct ReqInfo {
    pub cookies: HashMap<String, String>,
    pub referer: Option<String>,
    pub user_agent: String,
    pub peer: String,
    pub post: bool,
    pub body: Vec<u8>,
}

impl ReqInfo {
    pub(crate) fn parse_cookies(header: Option<&str>) -> HashMap<String, String> {
        header
            .unwrap_or("")
            .split(';')
            .filter_map(|kv| kv.trim().split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

fn qp<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn random_hex(bytes: usize) -> String {
    let mut rng = rand::rng();
    (0..bytes)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn with_cookie(mut resp: Response, cookie: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

fn typed(status: StatusCode, ctype: &'static str, body: String) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    resp
}

fn html(body: String) -> Response {
    typed(StatusCode::OK, "text/html; charset=utf-8", body)
}

fn redirect(location: &str) -> Response {
    let mut resp = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A return URL we will redirect to: a local path only.
fn local(url: &str) -> &str {
    if url.starts_with('/') && !url.starts_with("//") && !url.contains('\\') {
        url
    } else {
        "/"
    }
}

/// The login redirect an anonymous or expired visitor gets.
pub(crate) fn login_redirect(site: &Site, full: &str) -> Response {
    redirect(&format!("{}?redirectURL={}", site.login_path, enc(full)))
}

const TEMPLATES: &[&str] = &[
    "login.html",
    "robot.html",
    "mtop_search.html",
    "punish.html",
];

/// Adds the modern page templates (`platforms/modern/`) to `env`.
pub(crate) fn add_templates(
    env: &mut Environment<'static>,
    platforms_dir: &Path,
) -> Result<(), FixtureError> {
    for t in TEMPLATES {
        let path = platforms_dir.join("modern").join(t);
        let source = std::fs::read_to_string(&path).map_err(|source| FixtureError::Io {
            path: path.clone(),
            source,
        })?;
        env.add_template_owned(format!("modern/{t}"), source)
            .map_err(|e| FixtureError::Template {
                path: path.clone(),
                message: e.to_string(),
            })?;
    }
    Ok(())
}

/// Gate outcome for a page request.
pub(crate) enum Gate {
    Pass,
    Respond(Response),
    /// Amazon.cn's robot check.
    Robot,
}

impl Modern {
    pub(crate) fn new(opts: ModernOptions, fixtures_dir: &Path) -> Result<Self, FixtureError> {
        let path = opts
            .accounts
            .clone()
            .unwrap_or_else(|| fixtures_dir.join("accounts.toml"));
        let text = std::fs::read_to_string(&path).map_err(|source| FixtureError::Io {
            path: path.clone(),
            source,
        })?;
        let accounts: HashMap<String, Vec<Account>> =
            toml::from_str(&text).map_err(|e| FixtureError::Accounts {
                path: path.clone(),
                message: e.to_string(),
            })?;
        Ok(Modern {
            opts,
            accounts,
            sessions: Mutex::new(HashMap::new()),
            clients: Mutex::new(HashMap::new()),
            secret: random_hex(16),
        })
    }

    /// The live session of `platform`'s login group this request carries, counting the
    /// request against it. An expired session is forgotten.
    fn session(&self, platform: &str, req: &ReqInfo) -> Option<String> {
        let g = group(platform);
        let sid = req.cookies.get(session_cookie(g))?;
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let s = sessions.get_mut(sid)?;
        if s.group != g {
            return None;
        }
        let max = self.opts.session_max_requests;
        if s.created.elapsed() >= self.opts.session_ttl || (max > 0 && s.requests >= max) {
            sessions.remove(sid);
            return None;
        }
        s.requests += 1;
        Some(sid.clone())
    }

    /// Whether the request carries a valid `x5sec` for this session and User-Agent.
    fn cleared(&self, sid: &str, req: &ReqInfo) -> bool {
        let Some((exp, mac)) = req.cookies.get("x5sec").and_then(|v| v.split_once('.')) else {
            return false;
        };
        let Ok(exp_ms) = exp.parse::<u64>() else {
            return false;
        };
        exp_ms > now_ms() && mac == self.clearance_mac(sid, &req.user_agent, exp_ms)
    }

    fn clearance_mac(&self, sid: &str, ua: &str, exp_ms: u64) -> String {
        hex::encode(Sha256::digest(format!(
            "{}\n{sid}\n{ua}\n{exp_ms}",
            self.secret
        )))
    }

    /// Over the mtop rate with no clearance: the open challenge's `x5secdata`.
    fn challenge(&self, sid: &str, req: &ReqInfo) -> Option<String> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let s = sessions.get_mut(sid)?;
        if s.mtop_calls <= self.opts.mtop_max_calls || self.cleared(sid, req) {
            return None;
        }
        Some(s.punish.get_or_insert_with(|| random_hex(24)).clone())
    }

    fn punish_url(platform: &str, x5secdata: &str, back: &str) -> String {
        format!(
            "/{platform}/_____tmd_____/punish?x5secdata={x5secdata}&x5step=1&url={}",
            enc(back)
        )
    }

    /// Login walls and the robot check in front of search pages (and Amazon item pages).
    pub(crate) fn gate(&self, site: &Site, search: bool, full: &str, req: &ReqInfo) -> Gate {
        match site.key {
            "amazon_cn" => self.burst(req),
            "taobao" | "tmall" | "jd" if search => {
                let Some(sid) = self.session(site.key, req) else {
                    return Gate::Respond(login_redirect(site, full));
                };
                if site.key != "jd"
                    && let Some(data) = self.challenge(&sid, req)
                {
                    return Gate::Respond(redirect(&Self::punish_url(site.key, &data, full)));
                }
                Gate::Pass
            }
            _ => Gate::Pass,
        }
    }

    fn burst(&self, req: &ReqInfo) -> Gate {
        let now = Instant::now();
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        let c = clients.entry(req.peer.clone()).or_default();
        if c.blocked_until.is_some_and(|t| now < t) {
            return Gate::Robot;
        }
        c.blocked_until = None;
        c.hits.push_back(now);
        while c
            .hits
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.opts.burst_window)
        {
            c.hits.pop_front();
        }
        if c.hits.len() > self.opts.burst_limit as usize {
            c.hits.clear();
            c.blocked_until = Some(now + self.opts.robot_check);
            return Gate::Robot;
        }
        Gate::Pass
    }

    /// The robot-check page.
    pub(crate) fn robot_page(env: &Environment, full: &str) -> Response {
        match env
            .get_template("modern/robot.html")
            .and_then(|t| t.render(context! { amzn => random_hex(12), return_url => full }))
        {
            Ok(body) => html(body),
            Err(e) => typed(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain",
                e.to_string(),
            ),
        }
    }

    /// Modern-only endpoints: login pages and forms, mtop, JD's `s_new.php`, the slider.
    /// `None` when the path is none of them.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn route(
        &self,
        env: &Environment,
        sites: &[&'static Site],
        path: &str,
        query: &[(String, String)],
        req: &ReqInfo,
        listings: &(dyn Fn(&str, &str) -> Vec<CatalogueListing> + Sync),
        jd_half: &(dyn Fn(&str, usize) -> Result<String, FixtureError> + Sync),
    ) -> Option<Response> {
        let param = |name: &str| qp(query, name);
        // Tmall's definition names Taobao's login URL; a `base_url` of /tmall maps it here.
        let tmall_login = path == "/tmall/member/login.jhtml";
        if let Some(site) = sites
            .iter()
            .find(|s| s.login_path == path || (tmall_login && s.key == "tmall"))
        {
            let platform = path.split('/').nth(1).unwrap_or(site.key);
            return Some(self.login(env, platform, path, param("redirectURL"), req));
        }
        let (platform, rest) = path.strip_prefix('/')?.split_once('/')?;
        let rest = format!("/{rest}");
        match (platform, rest.as_str()) {
            ("taobao" | "tmall", r) if r == format!("/h5/{MTOP_SEARCH_API}/2.0/") => {
                Some(self.mtop(platform, query, req, listings))
            }
            ("jd", "/s_new.php") => Some(self.jd_second_half(query, req, jd_half)),
            ("taobao" | "tmall", "/_____tmd_____/punish") => {
                let data = param("x5secdata").unwrap_or("");
                let verify = format!(
                    "/{platform}/_____tmd_____/slide?x5secdata={}&url={}",
                    enc(data),
                    enc(param("url").unwrap_or("/"))
                );
                Some(
                    match env.get_template("modern/punish.html").and_then(|t| {
                        t.render(context! { x5secdata => data, verify_url => verify })
                    }) {
                        Ok(body) => html(body),
                        Err(e) => typed(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "text/plain",
                            e.to_string(),
                        ),
                    },
                )
            }
            ("taobao" | "tmall", "/_____tmd_____/slide") => Some(self.slide(platform, query, req)),
            ("amazon_cn", "/errors/validateCaptcha") => {
                // Never solvable here: the check lasts its time.
                Some(Self::robot_page(env, param("amzn-r").unwrap_or("/")))
            }
            _ => None,
        }
    }

    fn login(
        &self,
        env: &Environment,
        platform: &str,
        path: &str,
        back: Option<&str>,
        req: &ReqInfo,
    ) -> Response {
        let g = group(platform).to_string();
        let (user_field, pass_field) = match g.as_str() {
            "taobao" => ("fm-login-id", "fm-login-password"),
            "jd" => ("loginname", "nloginpwd"),
            _ => ("email", "password"),
        };
        let form: HashMap<String, String> = url::form_urlencoded::parse(&req.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let back = form
            .get("redirectURL")
            .map(String::as_str)
            .or(back)
            .unwrap_or("/")
            .to_string();
        let mut error = None;
        if req.post {
            let user = form.get(user_field).map_or("", String::as_str);
            let pass = form.get(pass_field).map_or("", String::as_str);
            let ok = self
                .accounts
                .get(&g)
                .is_some_and(|list| list.iter().any(|a| a.name == user && a.password == pass));
            if ok {
                return self.start_session(&g, user, local(&back));
            }
            error = Some(match g.as_str() {
                "taobao" => "账号名或登录密码不正确",
                "jd" => "账户名与密码不匹配，请重新输入",
                _ => "您的密码不正确",
            });
        }
        let (title, brand) = match g.as_str() {
            "taobao" => ("淘宝网 - 淘！我喜欢", "淘宝"),
            "jd" => ("京东-欢迎登录", "京东"),
            _ => ("Amazon 登录", "Amazon"),
        };
        let action = format!("{path}?redirectURL={}", enc(&back));
        let rendered = env.get_template("modern/login.html").and_then(|t| {
            t.render(context! {
                title => title,
                platform => g,
                qr_title => format!("手机扫码登录"),
                qr_tip => format!("打开{brand}App 扫一扫登录"),
                form_title => "密码登录",
                action => action,
                error => error,
                user_field => user_field,
                pass_field => pass_field,
                user_placeholder => "账号名/邮箱/手机号",
                pass_placeholder => "请输入登录密码",
                return_url => back,
                submit => "登录",
            })
        });
        match rendered {
            Ok(body) => html(body),
            Err(e) => typed(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain",
                e.to_string(),
            ),
        }
    }

    fn start_session(&self, g: &str, user: &str, back: &str) -> Response {
        let sid = random_hex(16);
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                sid.clone(),
                Session {
                    group: g.to_string(),
                    created: Instant::now(),
                    requests: 0,
                    mtop_calls: 0,
                    token: None,
                    punish: None,
                },
            );
        let user_no = u64::from_str_radix(&hex::encode(&Sha256::digest(user)[..6]), 16)
            .unwrap_or(0)
            % 10_000_000_000;
        let cookies = match g {
            "taobao" => vec![
                format!("cookie2={sid}; Path=/; HttpOnly"),
                format!("_tb_token_={}; Path=/", random_hex(7)),
                format!("unb={user_no}; Path=/; HttpOnly"),
                format!("_nk_={}; Path=/", enc(user)),
            ],
            "jd" => vec![
                format!("thor={sid}; Path=/; HttpOnly"),
                format!("pt_key=AAJ{}; Path=/; HttpOnly", random_hex(20)),
                format!("pt_pin={}; Path=/", enc(user)),
            ],
            _ => vec![
                format!("session-token={sid}; Path=/; HttpOnly"),
                format!("at-main=Atza|{}; Path=/; HttpOnly", random_hex(20)),
            ],
        };
        cookies
            .iter()
            .fold(redirect(back), |resp, c| with_cookie(resp, c))
    }

    fn mtop(
        &self,
        platform: &str,
        query: &[(String, String)],
        req: &ReqInfo,
        listings: &(dyn Fn(&str, &str) -> Vec<CatalogueListing> + Sync),
    ) -> Response {
        let param = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map_or("", |(_, v)| v.as_str())
        };
        let callback = param("callback");
        let callback = if !callback.is_empty()
            && callback
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            callback
        } else {
            "mtopjsonp1"
        };
        let reply = |ret: &str, data: serde_json::Value| {
            let body = serde_json::json!({
                "api": MTOP_SEARCH_API, "data": data, "ret": [ret], "v": "2.0",
            });
            typed(
                StatusCode::OK,
                "application/javascript; charset=utf-8",
                format!("{callback}({body})"),
            )
        };
        let empty = serde_json::json!({});
        let Some(sid) = self.session(platform, req) else {
            return reply("FAIL_SYS_SESSION_EXPIRED::Session过期", empty);
        };
        let cookie_token = req
            .cookies
            .get("_m_h5_tk")
            .and_then(|v| v.rsplit_once('_'))
            .map(|(tok, exp)| (tok.to_string(), exp.parse::<u64>().unwrap_or(0)));
        let issued = {
            let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            sessions.get(&sid).and_then(|s| s.token.clone())
        };
        let token = match (&cookie_token, &issued) {
            (Some((tok, exp)), Some(iss)) if tok == iss && *exp > now_ms() => tok.clone(),
            _ => {
                let tok = random_hex(16);
                let exp = now_ms() + 60 * 60 * 1000;
                if let Some(s) = self
                    .sessions
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_mut(&sid)
                {
                    s.token = Some(tok.clone());
                }
                let ret = if cookie_token.is_none() {
                    "FAIL_SYS_TOKEN_EMPTY::令牌为空"
                } else {
                    "FAIL_SYS_TOKEN_EXOIRED::令牌过期"
                };
                let resp = with_cookie(reply(ret, empty), &format!("_m_h5_tk={tok}_{exp}; Path=/"));
                return with_cookie(resp, &format!("_m_h5_tk_enc={}; Path=/", random_hex(16)));
            }
        };
        let data = param("data");
        let expected = mtop_sign(&token, param("t"), param("appKey"), data);
        if param("appKey") != MTOP_APP_KEY || param("sign") != expected {
            return reply("FAIL_SYS_ILLEGAL_ACCESS::非法请求", empty);
        }
        {
            let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(s) = sessions.get_mut(&sid) {
                s.mtop_calls += 1;
            }
        }
        if let Some(x5) = self.challenge(&sid, req) {
            // Back to the search that was challenged, as the real punish URL's `url=` does.
            let back = req
                .referer
                .as_deref()
                .and_then(|r| url::Url::parse(r).ok())
                .filter(|u| u.path().starts_with(&format!("/{platform}/")))
                .map(|u| match u.query() {
                    Some(q) => format!("{}?{q}", u.path()),
                    None => u.path().to_string(),
                })
                .unwrap_or_else(|| format!("/{platform}"));
            let url = Self::punish_url(platform, &x5, &back);
            return reply(
                "FAIL_SYS_USER_VALIDATE::哎哟喂,被挤爆啦,请稍后重试!",
                serde_json::json!({ "url": url }),
            );
        }
        #[derive(Deserialize)]
        struct SearchData {
            q: String,
            #[serde(default)]
            s: serde_json::Value,
            #[serde(default)]
            n: Option<usize>,
        }
        let Ok(d) = serde_json::from_str::<SearchData>(data) else {
            return reply("FAIL_SYS_PARAMINVALID::参数错误", empty);
        };
        let offset = match &d.s {
            serde_json::Value::Number(n) => n.as_u64().unwrap_or(0) as usize,
            serde_json::Value::String(s) => s.parse().unwrap_or(0),
            _ => 0,
        };
        let size =
            d.n.unwrap_or(if platform == "tmall" { 60 } else { 44 })
                .min(100);
        let all = listings(platform, &d.q);
        let items: Vec<serde_json::Value> = all
            .iter()
            .skip(offset)
            .take(size)
            .map(|l| {
                serde_json::json!({
                    "item_id": l.item_id,
                    "title": l.title,
                    "price": format!("{:.2}", l.price),
                    "nick": l.seller,
                    "userId": l.seller_id,
                    "realSales": format!("{}人付款", l.sales),
                    "procity": l.location,
                    "auctionURL": format!("/{platform}/item.htm?id={}", l.item_id),
                })
            })
            .collect();
        reply(
            "SUCCESS::调用成功",
            serde_json::json!({
                "itemsArray": items,
                "totalResults": all.len(),
                "pageSize": size,
                "s": offset,
            }),
        )
    }

    fn jd_second_half(
        &self,
        query: &[(String, String)],
        req: &ReqInfo,
        jd_half: &(dyn Fn(&str, usize) -> Result<String, FixtureError> + Sync),
    ) -> Response {
        let param = |name: &str| qp(query, name);
        if self.session("jd", req).is_none() {
            // The real endpoint answers an anonymous call with an empty page.
            return html(String::new());
        }
        let referer_ok = req
            .referer
            .as_deref()
            .and_then(|r| url::Url::parse(r).ok())
            .is_some_and(|u| u.path() == "/jd/Search");
        if !referer_ok || param("scrolling") != Some("y") {
            return html(String::new());
        }
        let keyword = param("keyword").unwrap_or("");
        let half = param("page")
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(2)
            .max(1);
        match jd_half(keyword, half) {
            Ok(text) => html(items_fragment(&text)),
            Err(e) => typed(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain",
                e.to_string(),
            ),
        }
    }

    fn slide(&self, platform: &str, query: &[(String, String)], req: &ReqInfo) -> Response {
        let param = |name: &str| qp(query, name);
        let fail = || {
            typed(
                StatusCode::OK,
                "application/json",
                r#"{"code":300,"message":"验证失败，请重试"}"#.to_string(),
            )
        };
        let Some(sid) = req.cookies.get(session_cookie(group(platform))) else {
            return fail();
        };
        #[derive(Deserialize)]
        struct Slide {
            x: u32,
            w: u32,
            n: u32,
        }
        let slid = param("slidedata")
            .and_then(|s| serde_json::from_str::<Slide>(s).ok())
            .is_some_and(|s| s.w > 0 && s.x >= s.w && s.n >= 2);
        let data = param("x5secdata").unwrap_or("");
        let matches = {
            let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            match sessions.get_mut(sid) {
                Some(s) if slid && !data.is_empty() && s.punish.as_deref() == Some(data) => {
                    s.punish = None;
                    true
                }
                _ => false,
            }
        };
        if !matches {
            return fail();
        }
        let exp = now_ms() + u64::try_from(self.opts.clearance_ttl.as_millis()).unwrap_or(0);
        let mac = self.clearance_mac(sid, &req.user_agent, exp);
        let body = serde_json::json!({ "code": 0, "url": local(param("url").unwrap_or("/")) });
        with_cookie(
            typed(StatusCode::OK, "application/json", body.to_string()),
            &format!("x5sec={exp}.{mac}; Path=/; HttpOnly"),
        )
    }
}

/// The `<li class="gl-item">` elements of a rendered JD page: what `s_new.php` returns.
fn items_fragment(page: &str) -> String {
    let open = "<ul class=\"gl-warp clearfix\" data-tpl=\"1\">";
    let Some(start) = page.find(open).map(|i| i + open.len()) else {
        return String::new();
    };
    let end = page[start..]
        .find("</ul><span class=\"clr\">")
        .map_or(page.len(), |i| start + i);
    page[start..end].to_string()
}

/// The script the JD HTML half carries: it loads the other 30 items, as the real page does
/// when scrolled.
pub(crate) fn jd_scroll_script(keyword: &str, half: usize) -> String {
    let kw = serde_json::to_string(&enc(keyword)).unwrap_or_default();
    format!(
        "<script>(function(){{var ids=Array.prototype.map.call(document.querySelectorAll('#J_goodsList li.gl-item'),function(li){{return li.getAttribute('data-sku')}}).join(',');\
fetch('/jd/s_new.php?keyword='+{kw}+'&enc=utf-8&page={next}&s={s}&scrolling=y&log_id={log}&tpl=1_M&show_items='+ids,{{credentials:'same-origin'}}).then(function(r){{return r.text()}}).then(function(h){{var ul=document.querySelector('#J_goodsList ul.gl-warp');if(ul){{ul.insertAdjacentHTML('beforeend',h)}}}})}})();</script>",
        next = half + 1,
        s = half * 30 + 1,
        log = now_ms(),
    )
}

/// The Taobao/Tmall search shell: no listings, only the script that asks mtop for them.
pub(crate) fn render_shell(
    env: &Environment,
    site: &Site,
    keyword: &str,
    query: &[(String, String)],
    charset: super::render::Charset,
) -> Result<String, FixtureError> {
    let offset: usize = query
        .iter()
        .find(|(k, _)| k == "s")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let data = serde_json::json!({ "q": keyword, "s": offset, "n": site.page_size }).to_string();
    let config = serde_json::json!({
        "appKey": MTOP_APP_KEY,
        "api": MTOP_SEARCH_API,
        "endpoint": format!("/{}/h5/{MTOP_SEARCH_API}/2.0/", site.key),
        "data": data,
    });
    let brand = if site.key == "tmall" {
        "天猫"
    } else {
        "淘宝"
    };
    env.get_template("modern/mtop_search.html")
        .and_then(|t| {
            t.render(context! {
                keyword => keyword,
                brand => brand,
                platform => site.key,
                page => offset / site.page_size + 1,
                config => minijinja::Value::from(minijinja::value::Serde(&config)),
                meta_charset => charset.meta,
            })
        })
        .map_err(|e| FixtureError::Render(format!("{e:#}")))
}
