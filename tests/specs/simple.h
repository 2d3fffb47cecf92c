/* simple: a header `cava init` can draft a complete spec for (no decisions left). */
#ifndef SIMPLE_H
#define SIMPLE_H

typedef struct simple_engine_s *simple_engine; /* opaque handle */
typedef struct simple_vec { float x, y, z; } simple_vec;

simple_engine simple_open(const char *config, int flags);
void simple_close(simple_engine e);
void simple_set_origin(simple_engine e, const simple_vec *origin);
void simple_scale(simple_engine e, double factor, unsigned long steps);
simple_engine simple_clone(simple_engine e, const simple_vec *offset);

#endif
