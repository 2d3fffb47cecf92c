#include <gtest/gtest.h>
TEST(Cava, Placeholder) {}
