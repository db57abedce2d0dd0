# pkit_add_plain_child(<target> <source.c>): a tiny child program built without the
# project-wide flags. Where the architecture allows it, a static executable without libc
# (the source must support PKIT_BENCH_CHILD_FREESTANDING, as tools/bench/actors/
# bench_child.c does): exec'ing it costs the kernel's execve alone, and in a sanitizer build
# it carries no sanitizer runtime — which matters when a test runs 10,000 of them.
function(pkit_add_plain_child target source)
  add_executable(${target} ${source})
  target_link_libraries(${target} PRIVATE pkit_warnings)
  # Never the directory's sanitizer options, on any architecture: a sanitized child spends
  # its first milliseconds in the sanitizer's start-up.
  set_target_properties(${target} PROPERTIES COMPILE_OPTIONS "" LINK_OPTIONS "")
  if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64|aarch64|arm64)$")
    # No PIE, no libc, no start-up files, no stack protector.
    set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE OFF)
    target_compile_definitions(${target} PRIVATE PKIT_BENCH_CHILD_FREESTANDING)
    target_compile_options(${target} PRIVATE
      -ffreestanding -fno-stack-protector -fno-builtin -fno-asynchronous-unwind-tables)
    target_link_options(${target} PRIVATE -nostdlib -static -no-pie)
  endif()
endfunction()
