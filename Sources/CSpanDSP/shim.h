#include <stdint.h>
#include <sys/types.h>
#include <spandsp.h>
