-- Peer (g) of `make bench`: the OpenResty-style gate a user would write instead of ours, on
-- Debian 12's libnginx-mod-http-lua (LuaJIT) with lua-resty-core and lua-cjson. One access_by_lua
-- handler verifies the same HS256 session token with HMAC-SHA256 from OpenSSL's libcrypto through
-- the LuaJIT FFI (ngx.hmac_sha1 is SHA-1 only), and forwards the identity as request headers.
--
-- The checks mirror njs/src/core/token.ts, so the comparison is fair:
--   the session cookie exactly once in the Cookie header (a duplicate is refused);
--   three segments; the header segment equal to the one of the configured key (never decoded);
--   signature exactly 43 base64url characters, payload strict base64url;
--   HMAC-SHA256 of header.payload, compared in constant time on the encoded strings;
--   payload a JSON object; exp, nbf (if present), iat (whole number) against the clock with leeway,
--   the maximum session age; sub and username non-empty strings; groups an array of strings;
--   ip equal to the client address (IP binding `exact`).
-- What it does less than our gate: no access policy, no silent renewal of an expired token (it is
-- refused), no key rotation (one key), no login redirect or branded pages (a bare 401), no removal
-- of the session cookie before the upstream, no percent-encoding of odd group names.
local ffi = require("ffi")
local cjson = require("cjson.safe")
local b64 = require("ngx.base64")

ffi.cdef([[
typedef struct evp_md_st EVP_MD;
const EVP_MD *EVP_sha256(void);
unsigned char *HMAC(const EVP_MD *evp_md, const void *key, int key_len,
                    const unsigned char *d, size_t n, unsigned char *md, unsigned int *md_len);
]])

-- nginx is linked with libcrypto, so its symbols are usually in the process already.
local crypto = ffi.C
if not pcall(function() return crypto.HMAC end) then crypto = ffi.load("libcrypto.so.3") end

local sha256 = crypto.EVP_sha256()
local md = ffi.new("unsigned char[32]")
local md_len = ffi.new("unsigned int[1]")
local byte, find, sub = string.byte, string.find, string.sub
local bxor, bor = bit.bxor, bit.bor

local cfg -- set once per worker by configure()

local _M = {}

--- cfg: secret, header (the JWT header segment of that key), cookie, leeway, max_age (seconds).
function _M.configure(c)
    cfg = c
end

local function deny(reason)
    ngx.var.lua_gate_reason = reason
    return ngx.exit(ngx.HTTP_UNAUTHORIZED)
end

-- The value of the single `name=` pair of the Cookie header; nil, or false when it appears twice.
local function session_cookie(header, name)
    if not header then return nil end
    local value
    local pos = 1
    local n = #header
    while pos <= n do
        local semi = find(header, ";", pos, true) or n + 1
        local s, e = find(header, "^[ \t]*" .. name .. "[ \t]*=", pos)
        if s and e < semi then
            if value then return false end
            value = sub(header, e + 1, semi - 1):match("^[ \t]*(.-)[ \t]*$")
        end
        pos = semi + 1
    end
    return value
end

-- Constant time for strings of equal length (the lengths are public: 43 characters).
local function same(a, b)
    if #a ~= #b then return false end
    local diff = 0
    for i = 1, #a do diff = bor(diff, bxor(byte(a, i), byte(b, i))) end
    return diff == 0
end

local function non_empty_string(v)
    return type(v) == "string" and v ~= ""
end

function _M.check()
    local headers = ngx.req.get_headers()
    local cookie = headers["cookie"]
    if type(cookie) == "table" then cookie = table.concat(cookie, "; ") end
    local token = session_cookie(cookie, cfg.cookie)
    if token == nil then return deny("token-missing") end
    if token == false then return deny("cookie-duplicate") end

    local dot1 = find(token, ".", 1, true)
    local dot2 = dot1 and find(token, ".", dot1 + 1, true)
    if not dot2 or find(token, ".", dot2 + 1, true) then return deny("token-invalid") end
    local header = sub(token, 1, dot1 - 1)
    local payload = sub(token, dot1 + 1, dot2 - 1)
    local signature = sub(token, dot2 + 1)
    if header ~= cfg.header then return deny("token-invalid") end
    if #signature ~= 43 or find(signature, "[^A-Za-z0-9_-]") or find(payload, "[^A-Za-z0-9_-]") then
        return deny("token-invalid")
    end

    local signed = sub(token, 1, dot2 - 1)
    crypto.HMAC(sha256, cfg.secret, #cfg.secret, signed, #signed, md, md_len)
    if not same(b64.encode_base64url(ffi.string(md, 32)), signature) then return deny("token-invalid") end

    local text = b64.decode_base64url(payload)
    local c = text and cjson.decode(text)
    if type(c) ~= "table" then return deny("token-malformed") end

    local now = ngx.time()
    local leeway = cfg.leeway
    if type(c.exp) ~= "number" then return deny("token-malformed") end
    if c.nbf ~= nil then
        if type(c.nbf) ~= "number" then return deny("token-malformed") end
        if now + leeway < c.nbf then return deny("token-not-yet-valid") end
    end
    local iat = c.iat
    if type(iat) ~= "number" or iat % 1 ~= 0 then return deny("token-malformed") end
    if now - iat < -leeway then return deny("token-not-yet-valid") end
    if now - iat > cfg.max_age + leeway then return deny("token-too-old") end
    if not non_empty_string(c.sub) or not non_empty_string(c.username) then return deny("token-malformed") end
    local groups = c.groups
    if groups ~= nil then
        if type(groups) ~= "table" then return deny("token-malformed") end
        for i = 1, #groups do
            if type(groups[i]) ~= "string" then return deny("token-malformed") end
        end
    end
    if c.ip ~= ngx.var.remote_addr then return deny("ip-mismatch") end
    if now > c.exp + leeway then return deny("token-expired") end

    ngx.req.set_header("X-Payload-user", (c.src or "") .. ":" .. c.username)
    ngx.req.set_header("X-Payload-sub", c.sub)
    ngx.req.set_header("X-Payload-username", c.username)
    ngx.req.set_header("X-Payload-name", c.name)
    ngx.req.set_header("X-Payload-email", c.email)
    ngx.req.set_header("X-Payload-groups", groups and table.concat(groups, ",") or "")
    ngx.req.set_header("X-Payload-src", c.src)
    ngx.req.set_header("X-Payload-sid", c.sid)
end

return _M
