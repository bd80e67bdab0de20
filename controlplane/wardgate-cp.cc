// wardgate-cp: the control plane (public API wardgate.v1, SQLite state, audit,
// reconciliation to dataplanes). Not built yet: it is the first item of ROADMAP.md.
// Until then operators use `wardctl --dataplane SOCKET ...` against wardgate-dp.
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--version") == 0) {
    std::printf("wardgate-cp %s\n", WARDGATE_VERSION);
    return 0;
  }
  std::fprintf(stderr,
               "wardgate-cp: the control plane is not available in this version; "
               "use `wardctl --dataplane SOCKET status` against wardgate-dp\n");
  return 2;
}
