// The API server's handle table: ids the guest sees for the real library's
// objects, and what happens when the library reuses an object's address.
#include "handle_table.h"

#include <gtest/gtest.h>

namespace hira::server {
namespace {

constexpr uint32_t kNode = 7;
constexpr uint32_t kGraph = 8;

TEST(HandleTable, AnAddressReusedAfterADeathGetsANewIdWhenTheLibraryReturnsIt) {
  HandleTable t;
  int graph = 0, node = 0;
  const uint64_t g = t.retain(&graph, kGraph);
  const uint64_t first = t.export_live(&node, kNode);  // a query names a node of the graph
  t.depends_on(&node, kNode, &graph);
  t.release(&graph, kGraph);  // destroying the graph ends its nodes too
  void *out = nullptr;
  EXPECT_FALSE(t.lookup(first, kNode, &out));
  // A callback about the node's end still names it by its old id...
  EXPECT_EQ(t.export_handle(&node, kNode), first);
  // ...but a new node the library returns at the same address is usable.
  const uint64_t second = t.export_live(&node, kNode);
  EXPECT_NE(second, first);
  EXPECT_NE(second, g);
  ASSERT_TRUE(t.lookup(second, kNode, &out));
  EXPECT_EQ(out, &node);
  EXPECT_FALSE(t.lookup(first, kNode, &out));
  // A live object keeps its id however often it is returned.
  EXPECT_EQ(t.export_live(&node, kNode), second);
  EXPECT_EQ(t.export_handle(&node, kNode), second);
}

TEST(HandleTable, IdsAreTyped) {
  HandleTable t;
  int obj = 0;
  const uint64_t id = t.export_live(&obj, kNode);
  void *out = nullptr;
  EXPECT_TRUE(t.lookup(id, kNode, &out));
  EXPECT_FALSE(t.lookup(id, kGraph, &out));
  EXPECT_EQ(t.export_live(nullptr, kNode), 0u);
}

}  // namespace
}  // namespace hira::server
