// The two parts of UnityEngine that the Unity sample scene's script uses, so that the test
// build compiles that script (clients/csharp/samples/Unity/ChatClient.cs) against the library
// and the generated messages as they are. Not Unity: a compile check, never run.
namespace UnityEngine
{
    public class MonoBehaviour { }

    public static class Debug
    {
        public static void Log(object message) { System.Console.WriteLine(message); }
    }
}
