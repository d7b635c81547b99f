#!/usr/bin/env bash
# Builds every libFuzzer target in fuzz/ (swiftc -sanitize=fuzzer,address against the package's
# sources; normal `swift build` never sees them) and runs each for a bounded time on its seed
# corpus in fuzz/corpus/<target>. Crashes land in .build/fuzz/crashes/<target>/.
#
#   tests/fuzz/run.sh                 every target, FUZZ_SECONDS (20) each
#   tests/fuzz/run.sh membership_instance ipam_message
#   FUZZ_SECONDS=300 tests/fuzz/run.sh
#
# Prints one line per target (execs/s, coverage, result) and `fuzz: N passed, M failed`.
# Exit status 1 when any target crashed or failed to build.
set -u
cd "$(dirname "$0")/../.."
export PATH=/opt/swift/usr/bin:$PATH
SECONDS_EACH=${FUZZ_SECONDS:-20}
OUT=.build/fuzz
mkdir -p "$OUT/obj" "$OUT/crashes"
FLAGS=(-sanitize=fuzzer,address -parse-as-library -O -g -swift-version 6 -suppress-warnings)

core_sources() { find Sources/WeftCore -name '*.swift' | sort; }

# Modules for targets that need more than WeftCore: built once as static libraries.
build_module() {  # name, sources..., [-- extra flags]
    local name=$1; shift
    local srcs=() extra=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do srcs+=("$1"); shift; done
    [ "${1:-}" = "--" ] && { shift; extra=("$@"); }
    swiftc "${FLAGS[@]}" -module-name "$name" -emit-module -emit-module-path "$OUT/obj/$name.swiftmodule" \
        -emit-library -static -o "$OUT/obj/lib$name.a" -I "$OUT/obj" "${extra[@]}" "${srcs[@]}"
}

build_target() {  # target → $OUT/<target>
    local t=$1
    case $t in
        envelope)
            [ -f "$OUT/obj/libWeftCrypto.a" ] || build_module WeftCrypto $(find Sources/WeftCrypto -name '*.swift' | sort) \
                -- -I Sources/CSodium -Xcc -I/usr/include || return 1
            swiftc "${FLAGS[@]}" -module-name FuzzEnvelope -I "$OUT/obj" -I Sources/CSodium \
                fuzz/envelope.swift Sources/WeftDaemon/Node/GossipEnvelope.swift \
                -L "$OUT/obj" -lWeftCrypto -lWeftCore -lsodium -o "$OUT/$t" ;;
        keyring)
            [ -f "$OUT/obj/libWeftCrypto.a" ] || build_module WeftCrypto $(find Sources/WeftCrypto -name '*.swift' | sort) \
                -- -I Sources/CSodium -Xcc -I/usr/include || return 1
            swiftc "${FLAGS[@]}" -module-name FuzzKeyring -I "$OUT/obj" -I Sources/CSodium fuzz/keyring.swift \
                -L "$OUT/obj" -lWeftCrypto -lWeftCore -lsodium -o "$OUT/$t" ;;
        control_request)
            swiftc "${FLAGS[@]}" -module-name FuzzControl fuzz/control_request.swift $(find Sources/WeftAPI -name '*.swift' | sort) -o "$OUT/$t" ;;
        cni_config)
            [ -f "$OUT/obj/libWeftAPI.a" ] || build_module WeftAPI $(find Sources/WeftAPI -name '*.swift' | sort) || return 1
            swiftc "${FLAGS[@]}" -module-name FuzzCNI -I "$OUT/obj" -L "$OUT/obj" -lWeftAPI fuzz/cni_config.swift \
                Sources/WeftCNI/CNIRequest.swift Sources/WeftCNI/CNIError.swift Sources/WeftCNI/JSON.swift Sources/WeftCNI/Naming.swift -o "$OUT/$t" ;;
        docker_plugin)
            [ -f "$OUT/obj/libWeftAPI.a" ] || build_module WeftAPI $(find Sources/WeftAPI -name '*.swift' | sort) || return 1
            swiftc "${FLAGS[@]}" -module-name WeftCNI -I "$OUT/obj" -L "$OUT/obj" -lWeftAPI fuzz/docker_plugin.swift \
                Sources/WeftDocker/HTTP.swift Sources/WeftDocker/DockerPlugin.swift Sources/WeftCNI/JSON.swift \
                Sources/WeftCNI/NetworkOps.swift Sources/WeftCNI/NodeClient.swift Sources/WeftCNI/CNIError.swift -o "$OUT/$t" ;;
        tunnel_instance)
            swiftc "${FLAGS[@]}" -module-name "Fuzz_$t" -I "$OUT/obj" "fuzz/$t.swift" Tests/WeftCoreTests/TunnelFakeSuite.swift \
                -L "$OUT/obj" -lWeftCore -o "$OUT/$t" ;;
        *)
            swiftc "${FLAGS[@]}" -module-name "Fuzz_$t" -I "$OUT/obj" "fuzz/$t.swift" -L "$OUT/obj" -lWeftCore -o "$OUT/$t" ;;
    esac
}

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for f in fuzz/*.swift; do targets+=("$(basename "$f" .swift)"); done
fi

passed=0; failed=0
# The package modules are rebuilt once per run (instrumented), then every target links them.
rm -f "$OUT"/obj/lib*.a
if ! build_module WeftCore $(core_sources) > "$OUT/WeftCore.build.log" 2>&1; then
    echo "fuzz: WeftCore failed to build (see $OUT/WeftCore.build.log)"; tail -5 "$OUT/WeftCore.build.log"
    echo "fuzz: 0 passed, ${#targets[@]} failed"; exit 1
fi
for t in "${targets[@]}"; do
    if ! build_target "$t" > "$OUT/$t.build.log" 2>&1; then
        echo "fuzz $t: BUILD FAILED (see $OUT/$t.build.log)"; tail -5 "$OUT/$t.build.log"
        failed=$((failed + 1)); continue
    fi
    mkdir -p "fuzz/corpus/$t" "$OUT/crashes/$t" "$OUT/work/$t"
    log="$OUT/$t.log"
    # Seeds from the repo plus what earlier runs found (kept out of git under .build).
    "$OUT/$t" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
        -artifact_prefix="$OUT/crashes/$t/" -print_final_stats=1 \
        "$OUT/work/$t" "fuzz/corpus/$t" > "$log" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    speed=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    if [ $rc -eq 0 ]; then
        echo "fuzz $t: ok, ${execs:-?} runs, ${speed:-?} exec/s, ${cov:-cov: ?} (${SECONDS_EACH} s)"
        passed=$((passed + 1))
    else
        echo "fuzz $t: CRASH (exit $rc), artifacts in $OUT/crashes/$t/"; grep -m3 -E 'ERROR|Fatal error|precondition' "$log"
        failed=$((failed + 1))
    fi
done
echo "fuzz: $passed passed, $failed failed"
[ $failed -eq 0 ]
