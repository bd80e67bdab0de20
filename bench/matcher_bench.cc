// Matcher throughput per core on a hospital traffic mix: HL7 v2 ADT/ORU messages
// over MLLP, DICOM PDUs (A-ASSOCIATE-RQ, P-DATA-TF with pixel data), HTTP/FHIR
// requests and random binary (TLS-like), against ~100 rules of the kind a hospital
// IPS runs (HL7/DICOM/HTTP/malware contents, a few pcre, most literals never seen).
// Reports bytes/s (GB/s) and ns per buffer; fired_per_buf shows the rules do fire.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "rules/files.h"
#include "rules/matcher.h"

namespace wardgate::rules {
namespace {

// ---------------------------------------------------------------------------------
// Rules, built directly (no parser dependency).

class RuleBuilder {
 public:
  RuleBuilder(uint32_t sid, Protocol proto = Protocol::kTcp) {
    r_.sid = sid;
    r_.header.protocol = proto;
    r_.file = "bench.rules";
    r_.line = static_cast<int>(sid);
  }
  RuleBuilder& Content(std::string bytes) {
    Detect d;
    d.kind = Detect::Kind::kContent;
    d.content.bytes = std::move(bytes);
    r_.detects.push_back(d);
    return *this;
  }
  RuleBuilder& Content(const char* bytes, size_t n) { return Content(std::string(bytes, n)); }
  RuleBuilder& NotContent(std::string bytes) {
    Content(std::move(bytes));
    r_.detects.back().content.negated = true;
    return *this;
  }
  RuleBuilder& Nocase() { return Mod([](auto& c) { c.nocase = true; }); }
  RuleBuilder& Startswith() { return Mod([](auto& c) { c.startswith = true; }); }
  RuleBuilder& Offset(int v) { return Mod([v](auto& c) { c.offset = v; }); }
  RuleBuilder& Depth(int v) { return Mod([v](auto& c) { c.depth = v; }); }
  RuleBuilder& Distance(int v) { return Mod([v](auto& c) { c.distance = v; }); }
  RuleBuilder& Within(int v) { return Mod([v](auto& c) { c.within = v; }); }
  RuleBuilder& Pcre(std::string pattern, std::string flags = "") {
    Detect d;
    d.kind = Detect::Kind::kPcre;
    d.pcre.pattern = std::move(pattern);
    d.pcre.relative = flags.find('R') != std::string::npos;
    d.pcre.flags = std::move(flags);
    r_.detects.push_back(d);
    return *this;
  }
  RuleBuilder& DstPort(uint16_t p) {
    r_.header.dst_ports.any = false;
    r_.header.dst_ports.include = {{p, p}};
    return *this;
  }
  RuleBuilder& DsizeGt(uint16_t n) {
    r_.dsize = Dsize{Dsize::Op::kGt, n, 0};
    return *this;
  }
  RuleBuilder& ToServer() {
    FlowOption f;
    f.to_server = true;
    f.established = true;
    r_.flow = f;
    return *this;
  }
  Rule Build() const { return r_; }

 private:
  template <typename F>
  RuleBuilder& Mod(F f) {
    f(r_.detects.back().content);
    return *this;
  }
  Rule r_;
};

std::vector<Rule> MedicalRules() {
  std::vector<Rule> v;
  uint32_t sid = 1000;
  auto add = [&](RuleBuilder b) { v.push_back(b.Build()); };
  // HL7 v2 over MLLP (port 2575).
  add(RuleBuilder(++sid).DstPort(2575).Content("\x0bMSH|").Startswith().Content("ADT^A08").Distance(0));
  add(RuleBuilder(++sid).DstPort(2575).Content("PID|").Pcre(R"(^[^\r]*\b\d{3}-\d{2}-\d{4}\b)", "R"));
  add(RuleBuilder(++sid).DstPort(2575).Content("QRY^A19"));
  add(RuleBuilder(++sid).DstPort(2575).Content("MSH|").Content("|ADT^A04|").Distance(0).NotContent("\rEVN|"));
  add(RuleBuilder(++sid).Content("OBX|").Content("|ED|").Distance(0).Within(12).Content("^PDF^").Distance(0));
  add(RuleBuilder(++sid).Content("<script").Nocase());
  add(RuleBuilder(++sid).Content("' OR 1=1").Nocase());
  add(RuleBuilder(++sid).Content("DROP TABLE").Nocase());
  add(RuleBuilder(++sid).DstPort(2575).Content("MSH|^~\\&|").Content("|RSP^K22").Distance(0));
  add(RuleBuilder(++sid).Content("\x0bMSH|").Startswith().Content("|MDM^T02").Distance(0));
  add(RuleBuilder(++sid).Content("OBX|").Content("|NM|").Distance(0).Within(6).Pcre(R"(^[A-Z]+\^[^|]*\|\|-?\d{5,})", "R"));
  // DICOM upper layer (port 104).
  add(RuleBuilder(++sid).Content("\x01\x00", 2).Depth(2).Content("1.2.840.10008.3.1.1.1").Distance(0));
  add(RuleBuilder(++sid).Content("\x01\x00", 2).Depth(2).Content("ANY-SCP         ").Distance(0));
  add(RuleBuilder(++sid).Content("1.2.840.10008.5.1.4.1.2.2.1"));
  add(RuleBuilder(++sid).Content("1.2.840.10008.1.1\x00", 18));
  add(RuleBuilder(++sid).Content("\x04\x00", 2).Depth(2).Content("\xe0\x7f\x10\x00", 4).Distance(0));
  add(RuleBuilder(++sid).Content("\x05\x00\x00\x00\x00\x04", 6).Depth(6));
  add(RuleBuilder(++sid).Content("\x07\x00", 2).Depth(2).DstPort(104));
  add(RuleBuilder(++sid).Content("DICM").Offset(128).Depth(4));
  add(RuleBuilder(++sid).Content("1.2.840.10008.5.1.4.1.1.104.1"));  // encapsulated PDF
  add(RuleBuilder(++sid).DstPort(104).Content("\x01\x00", 2).Depth(2).Pcre(R"(^.{10}[^ ]{1,15}\x00)", "sR"));
  // HTTP / FHIR (port 80).
  add(RuleBuilder(++sid).Content("GET ").Startswith().Content("/etc/passwd").Distance(0));
  add(RuleBuilder(++sid).Content("cmd.exe").Nocase());
  add(RuleBuilder(++sid).Content("union").Nocase().Content("select").Nocase().Distance(1).Within(20));
  add(RuleBuilder(++sid).Content("User-Agent: sqlmap").Nocase());
  add(RuleBuilder(++sid).Content("../../"));
  add(RuleBuilder(++sid).Content("/wp-admin"));
  add(RuleBuilder(++sid).ToServer().Content("POST ").Startswith().Content("/fhir/").Distance(0).Pcre(R"(Content-Length: \d{6,})"));
  add(RuleBuilder(++sid).ToServer().Content("Authorization: Basic "));
  add(RuleBuilder(++sid).Content("/fhir/Patient?").Pcre(R"(identifier=[^&\s]*%27)", "i"));
  add(RuleBuilder(++sid).Content("Host: ").Pcre(R"(^Host: [^\r\n]{256})", "m"));
  add(RuleBuilder(++sid).Content("/fhir/Patient?").Content("_count=").Distance(0).Pcre(R"(^\d{5,})", "R"));
  add(RuleBuilder(++sid).Content("Accept: application/fhir+json").Content("/$export").Distance(-400));
  // Malware and tooling.
  add(RuleBuilder(++sid, Protocol::kIp).Content("MZ\x90\x00\x03\x00\x00\x00", 8));
  add(RuleBuilder(++sid, Protocol::kIp).Content("This program cannot be run in DOS mode"));
  add(RuleBuilder(++sid).Content("powershell").Nocase().Content("-enc").Nocase().Distance(0));
  add(RuleBuilder(++sid).Content("\xffSMB", 4).Depth(8));
  add(RuleBuilder(++sid, Protocol::kIp).Content("TVqQAAMAAAAEAAAA"));
  add(RuleBuilder(++sid, Protocol::kIp).Content("X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR"));
  // Always candidates: pcre only, dsize only.
  add(RuleBuilder(++sid).DstPort(2575).Pcre(R"(\x0bMSH\|[^\r]{0,200}\|ADT\^A0[1-4])"));
  add(RuleBuilder(++sid).Pcre(R"(\b\d{3}-\d{2}-\d{4}\b)"));
  add(RuleBuilder(++sid, Protocol::kIp).DsizeGt(1460));
  // Threat-intel style literals that never occur in the traffic.
  std::mt19937 rng(7);
  const char* kAlnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  while (v.size() < 100) {
    std::string lit;
    const int n = 8 + static_cast<int>(rng() % 9);
    const bool binary = v.size() % 3 == 0;
    for (int i = 0; i < n; ++i) {
      lit.push_back(binary ? static_cast<char>(rng() & 0xff) : kAlnum[rng() % 62]);
    }
    RuleBuilder b(++sid, v.size() % 4 == 0 ? Protocol::kIp : Protocol::kTcp);
    b.Content(lit);
    if (v.size() % 5 == 0) b.Nocase();
    add(b);
  }
  return v;
}

// ---------------------------------------------------------------------------------
// Traffic.

enum class Kind { kHl7Adt, kHl7Oru, kDicomAssoc, kDicomData, kHttp, kRandom };

std::string Digits(std::mt19937& rng, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s.push_back(static_cast<char>('0' + rng() % 10));
  return s;
}

void Put16(std::string& b, unsigned v) {
  b.push_back(static_cast<char>(v >> 8));
  b.push_back(static_cast<char>(v));
}
void Put32(std::string& b, uint32_t v) {
  Put16(b, v >> 16);
  Put16(b, v & 0xffff);
}
std::string Pad(std::string s, size_t n) {
  s.resize(n, ' ');
  return s;
}

std::string Hl7Adt(std::mt19937& rng) {
  static const char* kEvents[] = {"A01", "A02", "A03", "A04", "A08"};
  const char* ev = kEvents[rng() % 5];
  std::string m = "\x0bMSH|^~\\&|EPIC|GHH|LAB|GHH|20240312" + Digits(rng, 6) + "||ADT^" + ev +
                  "^ADT_A01|MSG" + Digits(rng, 8) + "|P|2.5.1\r";
  if (rng() % 8) m += std::string("EVN|") + ev + "|20240312" + Digits(rng, 6) + "\r";
  m += "PID|1||" + Digits(rng, 7) + "^^^GHH^MR||EVERYMAN^ADAM^A^III||19610615|M||2106-3|"
       "2222 HOME STREET^^GREENSBORO^NC^27401-1020||(555) 555-" + Digits(rng, 4) +
       "|||S||PATID" + Digits(rng, 6) + "^2^M10^ADT1^AN^A|";
  if (rng() % 4 == 0) m += Digits(rng, 3) + "-" + Digits(rng, 2) + "-" + Digits(rng, 4);
  m += "\rPV1|1|I|2000^2012^01||||004777^ATTEND^AARON^A|||SUR||||ADM|A0|\r"
       "AL1|1||^ASPIRIN\rDG1|1|I10|J18.9^Pneumonia^I10||20240312|A\r\x1c\r";
  return m;
}

std::string Hl7Oru(std::mt19937& rng) {
  std::string m = "\x0bMSH|^~\\&|LIS|GHH|EHR|GHH|20240312" + Digits(rng, 6) +
                  "||ORU^R01^ORU_R01|MSG" + Digits(rng, 8) + "|P|2.5.1\r"
                  "PID|1||" + Digits(rng, 7) + "^^^GHH^MR||DOE^JANE||19750102|F\r"
                  "OBR|1|" + Digits(rng, 6) + "|" + Digits(rng, 6) +
                  "|80048^BASIC METABOLIC PANEL^CPT4|||20240312" + Digits(rng, 4) + "\r";
  static const char* kTests[] = {"GLU^Glucose", "NA^Sodium", "K^Potassium", "CL^Chloride",
                                 "CO2^Bicarbonate", "BUN^Urea nitrogen", "CREA^Creatinine",
                                 "CA^Calcium"};
  for (int i = 0; i < 8; ++i) {
    m += "OBX|" + std::to_string(i + 1) + "|NM|" + kTests[i] + "||" + Digits(rng, 2) + "." +
         Digits(rng, 1) + "|mg/dL|70-105|N|||F|||20240312" + Digits(rng, 4) + "\r";
  }
  if (rng() % 10 == 0) m += "OBX|9|ED|PDF^Report||^application^PDF^Base64^JVBERi0xLjQK\r";
  m += "\x1c\r";
  return m;
}

std::string DicomAssociate(std::mt19937& rng) {
  std::string items;
  auto item = [&items](uint8_t type, const std::string& body) {
    items.push_back(static_cast<char>(type));
    items.push_back(0);
    Put16(items, static_cast<unsigned>(body.size()));
    items += body;
  };
  item(0x10, "1.2.840.10008.3.1.1.1");
  static const char* kSop[] = {"1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4",
                               "1.2.840.10008.5.1.4.1.2.2.1", "1.2.840.10008.1.1"};
  for (int pc = 0; pc < 3; ++pc) {
    std::string sub;
    auto subitem = [&sub](uint8_t type, const std::string& body) {
      sub.push_back(static_cast<char>(type));
      sub.push_back(0);
      Put16(sub, static_cast<unsigned>(body.size()));
      sub += body;
    };
    subitem(0x30, kSop[rng() % 4]);
    subitem(0x40, std::string("1.2.840.10008.1.2.1\0", 20));
    item(0x20, std::string{static_cast<char>(1 + 2 * pc), 0, 0, 0} + sub);
  }
  item(0x50, std::string("\x51\x00\x00\x04\x00\x00\x40\x00", 8) + std::string("\x52\x00\x00\x1b", 4) +
                 "1.2.276.0.7230010.3.0.3.6.4");
  std::string pdu = "\x01";
  pdu.push_back(0);
  std::string body;
  Put16(body, 1);  // protocol version
  Put16(body, 0);
  body += Pad(rng() % 10 ? "PACS_MAIN" : "ANY-SCP", 16);
  body += Pad("MODALITY_CT" + std::to_string(rng() % 9), 16);
  body += std::string(32, '\0');
  body += items;
  Put32(pdu, static_cast<uint32_t>(body.size()));
  return pdu + body;
}

std::string DicomData(std::mt19937& rng) {
  std::string ds;
  auto elem = [&ds](uint16_t g, uint16_t e, const char* vr, const std::string& v) {
    ds.push_back(static_cast<char>(g & 0xff));
    ds.push_back(static_cast<char>(g >> 8));
    ds.push_back(static_cast<char>(e & 0xff));
    ds.push_back(static_cast<char>(e >> 8));
    ds += vr;
    ds.push_back(static_cast<char>(v.size() & 0xff));
    ds.push_back(static_cast<char>(v.size() >> 8));
    ds += v;
  };
  elem(0x0008, 0x0016, "UI", std::string("1.2.840.10008.5.1.4.1.1.2\0", 26));
  elem(0x0008, 0x0018, "UI", "1.2.826.0.1.3680043.8.498." + Digits(rng, 12));
  elem(0x0010, 0x0010, "PN", "DOE^JOHN");
  elem(0x0010, 0x0020, "LO", Digits(rng, 8));
  elem(0x0028, 0x0010, "US", "\x00\x02");
  // Pixel data (7fe0,0010) OW, then pixel bytes to fill the segment.
  ds += std::string("\xe0\x7f\x10\x00OW\x00\x00", 8);
  Put32(ds, 0x00080000);
  while (ds.size() < 1380) ds.push_back(static_cast<char>(rng() & 0xff));
  std::string pdv;
  Put32(pdv, static_cast<uint32_t>(ds.size() + 2));
  pdv.push_back(1);  // presentation context
  pdv.push_back(0);  // data, not last
  pdv += ds;
  std::string pdu("\x04\x00", 2);
  Put32(pdu, static_cast<uint32_t>(pdv.size()));
  return pdu + pdv;
}

std::string Http(std::mt19937& rng) {
  const int v = static_cast<int>(rng() % 10);
  std::string req;
  if (v < 6) {
    req = "GET /fhir/Patient?identifier=urn:oid:1.2.36.146.595.217.0.1|" + Digits(rng, 8) +
          "&_count=" + (v == 0 ? Digits(rng, 6) : "20") + "&_format=json HTTP/1.1\r\n";
  } else if (v < 8) {
    req = "GET /fhir/Observation?patient=" + Digits(rng, 7) + "&code=2345-7 HTTP/1.1\r\n";
  } else {
    std::string body = R"({"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"2345-7"}]},"valueQuantity":{"value":)" +
                       Digits(rng, 3) + R"(,"unit":"mg/dL"}})";
    while (body.size() < 700) body += " ";
    req = "POST /fhir/Observation HTTP/1.1\r\nContent-Type: application/fhir+json\r\n"
          "Content-Length: " + std::to_string(body.size()) + "\r\n";
    req += "Host: ehr.ghh.local\r\nUser-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64)\r\n";
    req += (rng() % 4 ? "Authorization: Bearer eyJhbGciOiJSUzI1NiJ9." + Digits(rng, 40)
                      : std::string("Authorization: Basic ZG9jdG9yOnBhc3N3b3Jk"));
    return req + "\r\n\r\n" + body;
  }
  req += "Host: ehr.ghh.local\r\nUser-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) "
         "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0 Safari/537.36\r\n"
         "Accept: application/fhir+json\r\nAccept-Encoding: gzip, deflate\r\n"
         "Authorization: Bearer eyJhbGciOiJSUzI1NiJ9." + Digits(rng, 120) + "\r\n"
         "Connection: keep-alive\r\n\r\n";
  return req;
}

std::string RandomBytes(std::mt19937& rng) {
  std::string s("\x17\x03\x03", 3);  // TLS application data
  Put16(s, 1395);
  while (s.size() < 1400) s.push_back(static_cast<char>(rng() & 0xff));
  return s;
}

struct Traffic {
  std::vector<std::string> payloads;
  std::vector<InspectContext> ctx;
  size_t bytes = 0;
};

Traffic MakeTraffic(const std::vector<Kind>& kinds) {
  std::mt19937 rng(42);
  Traffic t;
  for (Kind k : kinds) {
    InspectContext c;
    c.ip_proto = 6;
    c.src_addr = {10, 20, 0, static_cast<uint8_t>(rng() % 250)};
    c.dst_addr = {10, 10, 0, 5};
    c.src_port = static_cast<uint16_t>(49152 + rng() % 10000);
    c.to_server = true;
    c.established = true;
    std::string p;
    switch (k) {
      case Kind::kHl7Adt: p = Hl7Adt(rng); c.dst_port = 2575; break;
      case Kind::kHl7Oru: p = Hl7Oru(rng); c.dst_port = 2575; break;
      case Kind::kDicomAssoc: p = DicomAssociate(rng); c.dst_port = 104; break;
      case Kind::kDicomData: p = DicomData(rng); c.dst_port = 104; break;
      case Kind::kHttp: p = Http(rng); c.dst_port = 80; break;
      case Kind::kRandom: p = RandomBytes(rng); c.dst_port = 443; break;
    }
    if (p.size() > 1460) p.resize(1460);
    c.dsize = static_cast<uint16_t>(p.size());
    t.bytes += p.size();
    t.payloads.push_back(std::move(p));
    t.ctx.push_back(c);
  }
  return t;
}

constexpr size_t kBuffers = 1024;

std::vector<Kind> MixKinds() {
  // By buffers: HL7 35%, DICOM 30%, HTTP 20%, other TLS 15%.
  std::vector<Kind> k;
  for (size_t i = 0; i < kBuffers; ++i) {
    const size_t r = i % 20;
    k.push_back(r < 4    ? Kind::kHl7Adt
                : r < 7  ? Kind::kHl7Oru
                : r < 9  ? Kind::kDicomAssoc
                : r < 13 ? Kind::kDicomData
                : r < 17 ? Kind::kHttp
                         : Kind::kRandom);
  }
  std::shuffle(k.begin(), k.end(), std::mt19937(1));
  return k;
}

struct Engine {
  std::unique_ptr<CompiledRules> rules;
  std::unique_ptr<MatchScratch> scratch;
};

// The full set, or without the always-candidate rules (pcre/dsize only), to show
// what those cost: each runs on every buffer of its protocol.
Engine MakeEngine(bool with_always) {
  Engine x;
  RuleSet set;
  for (Rule& r : MedicalRules()) {
    bool has_content = false;
    for (const Detect& d : r.detects) {
      has_content |= d.kind == Detect::Kind::kContent && !d.content.negated;
    }
    if (with_always || has_content) set.rules.push_back(std::move(r));
  }
  std::string error;
  x.rules = CompiledRules::Compile(set, &error);
  if (!x.rules) {
    std::fprintf(stderr, "compile: %s\n", error.c_str());
    std::abort();
  }
  x.scratch = x.rules->NewScratch();
  const auto& s = x.rules->stats();
  std::fprintf(stderr,
               "rules %zu, prefilter literals %zu, always-candidates %zu, databases %zu bytes, "
               "compile %.1f ms\n",
               s.rules, s.prefilter_patterns, s.always_candidates, s.database_bytes, s.compile_ms);
  return x;
}

Engine& SharedEngine(bool with_always = true) {
  static Engine full = MakeEngine(true);
  if (with_always) return full;
  static Engine contents_only = MakeEngine(false);
  return contents_only;
}

void RunMatchOn(benchmark::State& state, Engine& e, const Traffic& t) {
  std::vector<uint32_t> fired;
  fired.reserve(e.rules->rules().size());
  size_t total_fired = 0;
  for (auto _ : state) {
    for (size_t i = 0; i < t.payloads.size(); ++i) {
      Buffer b;
      b.data = reinterpret_cast<const uint8_t*>(t.payloads[i].data());
      b.len = t.payloads[i].size();
      fired.clear();
      e.rules->Match(*e.scratch, t.ctx[i], b, fired);
      total_fired += fired.size();
    }
  }
  const auto buffers = static_cast<double>(state.iterations() * t.payloads.size());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * t.bytes));
  state.counters["ns_per_buf"] =
      benchmark::Counter(buffers, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["bytes_per_buf"] = static_cast<double>(t.bytes) / t.payloads.size();
  state.counters["fired_per_buf"] = static_cast<double>(total_fired) / buffers;
  const auto& c = e.scratch->counters();
  state.counters["cand_per_buf"] = static_cast<double>(c.candidates) / c.scans;
}

void RunMatch(benchmark::State& state, const Traffic& t, bool with_always = true) {
  RunMatchOn(state, SharedEngine(with_always), t);
}

void BM_MatchMix(benchmark::State& state) {
  static const Traffic t = MakeTraffic(MixKinds());
  RunMatch(state, t);
}
BENCHMARK(BM_MatchMix);

void BM_MatchMixContentRulesOnly(benchmark::State& state) {
  static const Traffic t = MakeTraffic(MixKinds());
  RunMatch(state, t, false);
}
BENCHMARK(BM_MatchMixContentRulesOnly);

// The same mix against ET Open's rules that load (lenient), from ../shared next to the
// repository (WARDGATE_ET_OPEN overrides the folder); skipped when absent.
void BM_MatchMixEtOpen(benchmark::State& state) {
  static Engine et = [] {
    Engine x;
    const char* env = std::getenv("WARDGATE_ET_OPEN");
    const std::string dir = env ? env : std::string(WARDGATE_SOURCE_ROOT) + "/../shared/data/et-open";
    std::vector<std::string> files;
    std::error_code ec;
    for (const auto& f : std::filesystem::directory_iterator(dir, ec)) {
      if (f.path().extension() == ".rules") files.push_back(f.path().string());
    }
    std::sort(files.begin(), files.end());
    LoadOptions o;
    o.lenient = true;
    const RuleSet set = ParseRuleFiles(files, o);
    std::string error;
    if (!set.rules.empty()) x.rules = CompiledRules::Compile(set, &error);
    if (x.rules) x.scratch = x.rules->NewScratch();
    return x;
  }();
  if (!et.rules) {
    state.SkipWithError("ET Open rules not found (../shared/data/et-open)");
    return;
  }
  static const Traffic t = MakeTraffic(MixKinds());
  RunMatchOn(state, et, t);
  state.counters["rules"] = static_cast<double>(et.rules->rules().size());
}
BENCHMARK(BM_MatchMixEtOpen);

void BM_MatchKind(benchmark::State& state, Kind kind) {
  static std::vector<std::unique_ptr<Traffic>> sets(6);
  auto& t = sets[static_cast<size_t>(kind)];
  if (!t) t = std::make_unique<Traffic>(MakeTraffic(std::vector<Kind>(kBuffers, kind)));
  RunMatch(state, *t);
}
BENCHMARK_CAPTURE(BM_MatchKind, Hl7Adt, Kind::kHl7Adt);
BENCHMARK_CAPTURE(BM_MatchKind, Hl7Oru, Kind::kHl7Oru);
BENCHMARK_CAPTURE(BM_MatchKind, DicomAssociate, Kind::kDicomAssoc);
BENCHMARK_CAPTURE(BM_MatchKind, DicomPData, Kind::kDicomData);
BENCHMARK_CAPTURE(BM_MatchKind, Http, Kind::kHttp);
BENCHMARK_CAPTURE(BM_MatchKind, RandomBinary, Kind::kRandom);

// A reassembled HL7 stream inspected as sliding windows: up to 1 KiB of old data,
// then a 1460-byte new segment. Bytes/s counts new stream bytes.
void BM_MatchStreamHl7(benchmark::State& state) {
  static const std::string stream = [] {
    std::mt19937 rng(3);
    std::string s;
    while (s.size() < 512 * 1024) s += rng() % 2 ? Hl7Adt(rng) : Hl7Oru(rng);
    return s;
  }();
  Engine& e = SharedEngine();
  InspectContext ctx;
  ctx.ip_proto = 6;
  ctx.dst_port = 2575;
  ctx.src_port = 50000;
  ctx.established = true;
  std::vector<uint32_t> fired;
  fired.reserve(e.rules->rules().size());
  size_t windows = 0, total_fired = 0;
  constexpr size_t kSeg = 1460, kKeep = 1024;
  for (auto _ : state) {
    for (size_t end = kSeg; end <= stream.size(); end += kSeg) {
      const size_t start = end > kSeg + kKeep ? end - kSeg - kKeep : 0;
      Buffer b;
      b.data = reinterpret_cast<const uint8_t*>(stream.data() + start);
      b.len = end - start;
      b.stream_offset = start;
      b.new_from = end - kSeg - start;
      b.is_stream = true;
      fired.clear();
      e.rules->Match(*e.scratch, ctx, b, fired);
      total_fired += fired.size();
      ++windows;
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(windows * kSeg));
  state.counters["ns_per_window"] = benchmark::Counter(
      static_cast<double>(windows), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["fired_per_window"] = static_cast<double>(total_fired) / windows;
}
BENCHMARK(BM_MatchStreamHl7);

void BM_Compile(benchmark::State& state) {
  RuleSet set;
  set.rules = MedicalRules();
  for (auto _ : state) {
    std::string error;
    auto c = CompiledRules::Compile(set, &error);
    benchmark::DoNotOptimize(c);
  }
}
BENCHMARK(BM_Compile)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace wardgate::rules

BENCHMARK_MAIN();
